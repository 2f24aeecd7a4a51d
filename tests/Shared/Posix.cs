// The system calls the tests make that .NET's File APIs do not: renameat2, copy_file_range,
// fallocate, lseek SEEK_DATA/SEEK_HOLE, xattrs, mknod, statx, utimensat, linkat, O_TMPFILE.
// Every call returns a value or -errno, so tests can assert on errnos directly.
// Shared by the test projects that mount something (linked from tests/Shared).
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace DedupFs.Tests.Support;

internal static unsafe partial class Posix
{
    public const int ORdonly = 0, OWronly = 1, ORdwr = 2, OCreat = 0x40, OExcl = 0x80, OTrunc = 0x200, OAppend = 0x400, ODirectory = 0x10000, OTmpFile = 0x410000;
    public const int AtFdCwd = -100, AtSymlinkFollow = 0x400;
    public const uint RenameNoReplace = 1, RenameExchange = 2;
    public const int SeekData = 3, SeekHole = 4;
    public const int FallocKeepSize = 1, FallocPunchHole = 2, FallocCollapse = 8, FallocZeroRange = 0x10;
    public const int XattrCreate = 1, XattrReplace = 2;
    public const long UtimeNow = (1L << 30) - 1, UtimeOmit = (1L << 30) - 2;

    public const int EPERM = 1, ENOENT = 2, EIO = 5, ENXIO = 6, E2BIG = 7, EACCES = 13, EEXIST = 17, EXDEV = 18, ENOTDIR = 20, EISDIR = 21,
        EINVAL = 22, EBUSY = 16, EFBIG = 27, ENOSPC = 28, EROFS = 30, ERANGE = 34, ENAMETOOLONG = 36, ENOTEMPTY = 39, ENODATA = 61, EOPNOTSUPP = 95;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenRaw(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "pread", SetLastError = true)]
    private static partial nint PreadRaw(int fd, byte* buf, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "pwrite", SetLastError = true)]
    private static partial nint PwriteRaw(int fd, byte* buf, nuint count, long offset);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, byte* buf, nuint count);

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static partial nint CopyFileRangeRaw(int fdIn, long* offIn, int fdOut, long* offOut, nuint len, uint flags);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int FallocateRaw(int fd, int mode, long offset, long len);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LseekRaw(int fd, long offset, int whence);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncRaw(int fd);

    [LibraryImport("libc", EntryPoint = "setxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetXattrRaw(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", EntryPoint = "lsetxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LSetXattrRaw(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", EntryPoint = "getxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetXattrRaw(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", EntryPoint = "listxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ListXattrRaw(string path, byte* list, nuint size);

    [LibraryImport("libc", EntryPoint = "removexattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RemoveXattrRaw(string path, string name);

    [LibraryImport("libc", EntryPoint = "mknod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MknodRaw(string path, uint mode, ulong dev);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxRaw(int dirfd, string path, int flags, uint mask, byte* buf);

    [LibraryImport("libc", EntryPoint = "utimensat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UtimensatRaw(int dirfd, string path, long* times, int flags);

    [LibraryImport("libc", EntryPoint = "linkat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkatRaw(int olddirfd, string oldpath, int newdirfd, string newpath, int flags);

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkdirRaw(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "rmdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RmdirRaw(string path);

    [LibraryImport("libc", EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkRaw(string path);

    [LibraryImport("libc", EntryPoint = "chmod", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ChmodRaw(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LchownRaw(string path, uint uid, uint gid);

    [LibraryImport("libc", EntryPoint = "symlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SymlinkRaw(string target, string path);

    public static int Mkdir(string path, uint mode = 0x1ED) => MkdirRaw(path, mode) == 0 ? 0 : Err();

    public static int Rmdir(string path) => RmdirRaw(path) == 0 ? 0 : Err();

    public static int Unlink(string path) => UnlinkRaw(path) == 0 ? 0 : Err();

    public static int Chmod(string path, uint mode) => ChmodRaw(path, mode) == 0 ? 0 : Err();

    public static int Chown(string path, uint uid, uint gid) => LchownRaw(path, uid, gid) == 0 ? 0 : Err();

    public static int Symlink(string target, string path) => SymlinkRaw(target, path) == 0 ? 0 : Err();

    private static int Err() => Marshal.GetLastPInvokeError();

    public static int Open(string path, int flags, int mode = 0x1A4)
    {
        int fd = OpenRaw(path, flags, mode);
        return fd < 0 ? -Err() : fd;
    }

    public static int OpenOrThrow(string path, int flags, int mode = 0x1A4)
    {
        int fd = Open(path, flags, mode);
        if (fd < 0) throw new IOException($"open {path}: errno {-fd}");
        return fd;
    }

    public static long Pread(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            nint n = PreadRaw(fd, p, (nuint)buffer.Length, offset);
            return n < 0 ? -Err() : n;
        }
    }

    public static long Pwrite(int fd, ReadOnlySpan<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            nint n = PwriteRaw(fd, p, (nuint)buffer.Length, offset);
            return n < 0 ? -Err() : n;
        }
    }

    public static long Write(int fd, ReadOnlySpan<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            nint n = WriteRaw(fd, p, (nuint)buffer.Length);
            return n < 0 ? -Err() : n;
        }
    }

    public static int Fsync(int fd) => FsyncRaw(fd) == 0 ? 0 : Err();

    public static int Rename2(string from, string to, uint flags) => RenameAt2(AtFdCwd, from, AtFdCwd, to, flags) == 0 ? 0 : Err();

    public static long CopyFileRange(SafeHandle source, long sourceOffset, SafeHandle target, long targetOffset, long length) =>
        CopyFileRange((int)source.DangerousGetHandle(), sourceOffset, (int)target.DangerousGetHandle(), targetOffset, length);

    public const int SigInt = 2, SigKill = 9;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    public static long CopyFileRange(int fdIn, long offIn, int fdOut, long offOut, long length)
    {
        nint n = CopyFileRangeRaw(fdIn, &offIn, fdOut, &offOut, (nuint)length, 0);
        return n < 0 ? -Err() : n;
    }

    public static int Fallocate(int fd, int mode, long offset, long length) => FallocateRaw(fd, mode, offset, length) == 0 ? 0 : Err();

    public static long Lseek(int fd, long offset, int whence)
    {
        long r = LseekRaw(fd, offset, whence);
        return r < 0 ? -Err() : r;
    }

    public static int SetXattr(string path, string name, byte[] value, int flags = 0)
    {
        fixed (byte* p = value)
        {
            return SetXattrRaw(path, name, p, (nuint)value.Length, flags) == 0 ? 0 : Err();
        }
    }

    /// <summary>setxattr on the link itself, not its target.</summary>
    public static int LSetXattr(string path, string name, byte[] value)
    {
        fixed (byte* p = value)
        {
            return LSetXattrRaw(path, name, p, (nuint)value.Length, 0) == 0 ? 0 : Err();
        }
    }

    /// <summary>The value, or null with errno; bufferSize 0 asks for the size only (returned as the length of a zero array).</summary>
    public static byte[]? GetXattr(string path, string name, out int errno, int bufferSize = 65536)
    {
        var buffer = new byte[Math.Max(bufferSize, 1)];
        fixed (byte* p = buffer)
        {
            nint n = GetXattrRaw(path, name, bufferSize == 0 ? null : p, (nuint)bufferSize);
            errno = n < 0 ? Err() : 0;
            if (n < 0) return null;
            return bufferSize == 0 ? new byte[n] : buffer.AsSpan(0, (int)n).ToArray();
        }
    }

    public static string[] ListXattr(string path)
    {
        var buffer = new byte[65536];
        fixed (byte* p = buffer)
        {
            nint n = ListXattrRaw(path, p, (nuint)buffer.Length);
            if (n < 0) throw new IOException($"listxattr failed: {Err()}");
            return Encoding.UTF8.GetString(buffer, 0, (int)n).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
    }

    public static int RemoveXattr(string path, string name) => RemoveXattrRaw(path, name) == 0 ? 0 : Err();

    public static int Mknod(string path, uint mode, ulong dev = 0) => MknodRaw(path, mode, dev) == 0 ? 0 : Err();

    public static int Link(string from, string to) => LinkatRaw(AtFdCwd, from, AtFdCwd, to, 0) == 0 ? 0 : Err();

    /// <summary>Gives an O_TMPFILE descriptor a name (linkat through /proc/self/fd).</summary>
    public static int LinkFd(int fd, string to) => LinkatRaw(AtFdCwd, $"/proc/self/fd/{fd}", AtFdCwd, to, AtSymlinkFollow) == 0 ? 0 : Err();

    public readonly record struct StatxTime(long Sec, uint Nsec)
    {
        public long TotalNs => Sec * 1_000_000_000L + Nsec;
    }

    public readonly record struct Stat(uint Mask, uint Nlink, uint Uid, uint Gid, uint Mode, ulong Ino, long Size, long Blocks,
        StatxTime Atime, StatxTime Btime, StatxTime Ctime, StatxTime Mtime, uint RdevMajor, uint RdevMinor);

    public static Stat Statx(string path, bool follow = false)
    {
        byte* buf = stackalloc byte[256];
        if (StatxRaw(AtFdCwd, path, follow ? 0 : 0x100 /* AT_SYMLINK_NOFOLLOW */, 0xFFF, buf) != 0)
            throw new IOException($"statx {path}: errno {Err()}");
        var s = new ReadOnlySpan<byte>(buf, 256);
        static StatxTime T(ReadOnlySpan<byte> s, int at) => new(BinaryPrimitives.ReadInt64LittleEndian(s[at..]), BinaryPrimitives.ReadUInt32LittleEndian(s[(at + 8)..]));
        return new Stat(
            BinaryPrimitives.ReadUInt32LittleEndian(s), BinaryPrimitives.ReadUInt32LittleEndian(s[16..]),
            BinaryPrimitives.ReadUInt32LittleEndian(s[20..]), BinaryPrimitives.ReadUInt32LittleEndian(s[24..]),
            BinaryPrimitives.ReadUInt16LittleEndian(s[28..]), BinaryPrimitives.ReadUInt64LittleEndian(s[32..]),
            BinaryPrimitives.ReadInt64LittleEndian(s[40..]), BinaryPrimitives.ReadInt64LittleEndian(s[48..]),
            T(s, 64), T(s, 80), T(s, 96), T(s, 112),
            BinaryPrimitives.ReadUInt32LittleEndian(s[128..]), BinaryPrimitives.ReadUInt32LittleEndian(s[132..]));
    }

    public static int Utimens(string path, long atimeSec, long atimeNsec, long mtimeSec, long mtimeNsec)
    {
        long* times = stackalloc long[4] { atimeSec, atimeNsec, mtimeSec, mtimeNsec };
        return UtimensatRaw(AtFdCwd, path, times, 0) == 0 ? 0 : Err();
    }

    public static byte[] ReadAll(int fd, long offset, int count)
    {
        var buffer = new byte[count];
        long n = Pread(fd, buffer, offset);
        if (n < 0) throw new IOException($"pread: errno {-n}");
        return buffer.AsSpan(0, (int)n).ToArray();
    }
}
