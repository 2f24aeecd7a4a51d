using System.Runtime.InteropServices;

namespace DedupFs.Fuse.Interop;

/// <summary>
/// The few libc calls Tmds.LibC does not bind (writev, recvmsg with our own msghdr, an ioctl
/// taking the request as unsigned long, stat's device number). Everything else goes through
/// Tmds.Linux.LibC.
/// </summary>
internal static unsafe partial class Libc
{
    private const string LibraryName = "libc";

    [StructLayout(LayoutKind.Sequential)]
    internal struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct MsgHdr
    {
        public void* Name;
        public uint NameLen;
        public IoVec* Iov;
        public nuint IovLen;
        public void* Control;
        public nuint ControlLen;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct CmsgHdr
    {
        public nuint Len;
        public int Level;
        public int Type;
    }

    internal const int SolSocket = 1;
    internal const int ScmRights = 1;

    [LibraryImport(LibraryName, EntryPoint = "writev", SetLastError = true)]
    internal static partial nint Writev(int fd, IoVec* iov, int iovcnt);

    [LibraryImport(LibraryName, EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport(LibraryName, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buffer, nuint count);

    [LibraryImport(LibraryName, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport(LibraryName, EntryPoint = "recvmsg", SetLastError = true)]
    internal static partial nint RecvMsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport(LibraryName, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(LibraryName, EntryPoint = "getuid")]
    internal static partial uint GetUid();

    [LibraryImport(LibraryName, EntryPoint = "getgid")]
    internal static partial uint GetGid();

    internal static int LastErrno => Marshal.GetLastPInvokeError();

    internal static string StrError(int errno) => Marshal.GetPInvokeErrorMessage(errno);
}
