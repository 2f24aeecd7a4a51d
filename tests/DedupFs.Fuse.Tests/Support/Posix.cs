using System.Runtime.InteropServices;
using System.Text;

namespace DedupFs.Fuse.Tests.Support;

/// <summary>System calls the tests make on a mount that .NET's file APIs do not expose.</summary>
internal static unsafe partial class Posix
{
    public const uint RenameNoReplace = 1, RenameExchange = 2;

    [LibraryImport("libc", EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int olddirfd, string oldpath, int newdirfd, string newpath, uint flags);

    [LibraryImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static partial nint CopyFileRangeRaw(int fdIn, long* offIn, int fdOut, long* offOut, nuint len, uint flags);

    [LibraryImport("libc", EntryPoint = "setxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetXattrRaw(string path, string name, byte* value, nuint size, int flags);

    [LibraryImport("libc", EntryPoint = "getxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint GetXattrRaw(string path, string name, byte* value, nuint size);

    [LibraryImport("libc", EntryPoint = "listxattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint ListXattrRaw(string path, byte* list, nuint size);

    [LibraryImport("libc", EntryPoint = "removexattr", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RemoveXattrRaw(string path, string name);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    public const int SigInt = 2, SigKill = 9;

    /// <summary>0 or the errno.</summary>
    public static int Rename2(string from, string to, uint flags) =>
        RenameAt2(-100, from, -100, to, flags) == 0 ? 0 : Marshal.GetLastPInvokeError();

    public static long CopyFileRange(SafeHandle source, long sourceOffset, SafeHandle target, long targetOffset, long length)
    {
        nint result = CopyFileRangeRaw((int)source.DangerousGetHandle(), &sourceOffset, (int)target.DangerousGetHandle(), &targetOffset, (nuint)length, 0);
        return result < 0 ? -Marshal.GetLastPInvokeError() : result;
    }

    public static int SetXattr(string path, string name, byte[] value, int flags = 0)
    {
        fixed (byte* p = value)
        {
            return SetXattrRaw(path, name, p, (nuint)value.Length, flags) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    public static byte[]? GetXattr(string path, string name, out int errno)
    {
        var buffer = new byte[65536];
        fixed (byte* p = buffer)
        {
            nint n = GetXattrRaw(path, name, p, (nuint)buffer.Length);
            errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
            return n < 0 ? null : buffer.AsSpan(0, (int)n).ToArray();
        }
    }

    public static string[] ListXattr(string path)
    {
        var buffer = new byte[65536];
        fixed (byte* p = buffer)
        {
            nint n = ListXattrRaw(path, p, (nuint)buffer.Length);
            if (n < 0)
            {
                throw new IOException($"listxattr failed: {Marshal.GetLastPInvokeError()}");
            }

            return Encoding.UTF8.GetString(buffer, 0, (int)n).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
    }

    public static int RemoveXattr(string path, string name) =>
        RemoveXattrRaw(path, name) == 0 ? 0 : Marshal.GetLastPInvokeError();
}
