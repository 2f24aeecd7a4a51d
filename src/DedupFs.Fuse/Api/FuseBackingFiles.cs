using DedupFs.Fuse.Interop;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Api;

/// <summary>
/// FUSE passthrough (protocol 7.40, Linux 6.9+): an open file can be backed by a file of
/// another filesystem, so the kernel reads and writes it directly — at native speed, with the
/// backing file's page cache — without a round trip through the daemon. Register the backing
/// file here, answer OPEN with <see cref="OpenReplyFlags.Passthrough"/> and the id, and close
/// the id when no open file uses it any more. Needs <see cref="InitFlags.Passthrough"/> granted
/// at INIT and CAP_SYS_ADMIN.
/// </summary>
public sealed class FuseBackingFiles
{
    internal static readonly FuseBackingFiles Unavailable = new(-1);

    private readonly int _deviceFd;

    internal FuseBackingFiles(int deviceFd) => _deviceFd = deviceFd;

    /// <summary>Registers <paramref name="fd"/>; returns the backing id (&gt; 0) or a negative errno.</summary>
    public unsafe int Open(int fd)
    {
        if (_deviceFd < 0)
        {
            return -Errno.ENOTCONN;
        }

        var map = new FuseBackingMap { Fd = fd };
        int id = Libc.Ioctl(_deviceFd, FuseConstants.DevIocBackingOpen, &map);
        return id < 0 ? -Libc.LastErrno : id;
    }

    /// <summary>Releases a backing id; 0 or a negative errno.</summary>
    public unsafe int Close(int backingId)
    {
        if (_deviceFd < 0)
        {
            return -Errno.ENOTCONN;
        }

        uint id = (uint)backingId;
        return Libc.Ioctl(_deviceFd, FuseConstants.DevIocBackingClose, &id) < 0 ? -Libc.LastErrno : 0;
    }
}
