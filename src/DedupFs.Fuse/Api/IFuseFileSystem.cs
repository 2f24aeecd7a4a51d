using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.Api;

/// <summary>
/// The low-level, inode-based interface the session drives: one method per FUSE request, in the
/// kernel's terms (node ids, file handles, raw name bytes). Every method has a default: ENOSYS
/// for requests, nothing for FORGET, so a filesystem implements only what it supports and the
/// kernel learns the rest is missing (for several opcodes it then stops asking).
/// </summary>
/// <remarks>
/// Return values are 0 on success or a positive errno. <c>out</c> structures are wire structures
/// the session encodes as they are. Names are the bytes the kernel sent, without the NUL.
/// Methods are called concurrently from several worker threads; a handler may block (that worker
/// waits) but must never touch the mount it serves, which would deadlock.
/// Lookup counts: every successful reply carrying a <see cref="FuseEntryOut"/> with a non-zero
/// NodeId (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE, TMPFILE, READDIRPLUS entries) gives the
/// kernel one reference the filesystem must count; FORGET and BATCH_FORGET give them back. If a
/// reply cannot be delivered (the request was interrupted meanwhile) the session calls
/// <see cref="Forget"/> itself, so counts stay exact.
/// </remarks>
public interface IFuseFileSystem
{
    /// <summary>INIT: adjust <see cref="FuseConnection.Want"/> and limits before the reply goes out.</summary>
    void Init(FuseConnection connection) { }

    /// <summary>DESTROY, or the end of the session: flush everything.</summary>
    void Destroy() { }

    int Lookup(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, out FuseEntryOut entry)
    {
        entry = default;
        return Errno.ENOSYS;
    }

    void Forget(NodeId node, ulong count) { }

    void BatchForget(ReadOnlySpan<ForgetItem> items)
    {
        foreach (var item in items)
        {
            Forget(item.Node, item.Count);
        }
    }

    /// <param name="fh">The handle when the kernel asked through an open file (FUSE_GETATTR_FH), else null.</param>
    int GetAttr(FuseRequestContext ctx, NodeId node, FileHandle? fh, out FuseAttrOut attr)
    {
        attr = default;
        return Errno.ENOSYS;
    }

    int SetAttr(FuseRequestContext ctx, NodeId node, in FuseSetAttrIn changes, out FuseAttrOut attr)
    {
        attr = default;
        return Errno.ENOSYS;
    }

    /// <param name="target">Room for the link target (PATH_MAX); set <paramref name="length"/>.</param>
    int ReadLink(FuseRequestContext ctx, NodeId node, Span<byte> target, out int length)
    {
        length = 0;
        return Errno.ENOSYS;
    }

    int Symlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, out FuseEntryOut entry)
    {
        entry = default;
        return Errno.ENOSYS;
    }

    int MkNod(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint rdev, uint umask, out FuseEntryOut entry)
    {
        entry = default;
        return Errno.ENOSYS;
    }

    int MkDir(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, out FuseEntryOut entry)
    {
        entry = default;
        return Errno.ENOSYS;
    }

    int Unlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name) => Errno.ENOSYS;

    int RmDir(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name) => Errno.ENOSYS;

    /// <summary>RENAME and RENAME2; <paramref name="flags"/> holds RENAME_NOREPLACE / RENAME_EXCHANGE / RENAME_WHITEOUT.</summary>
    int Rename(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, NodeId newParent, ReadOnlySpan<byte> newName, uint flags) => Errno.ENOSYS;

    int Link(FuseRequestContext ctx, NodeId node, NodeId newParent, ReadOnlySpan<byte> newName, out FuseEntryOut entry)
    {
        entry = default;
        return Errno.ENOSYS;
    }

    /// <param name="flags">open(2) flags as the kernel passes them (O_CREAT, O_EXCL, O_NOCTTY removed).</param>
    int Open(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        open = default;
        return Errno.ENOSYS;
    }

    /// <summary>
    /// READ: put up to <see cref="ReadBuffer.Size"/> bytes from <paramref name="offset"/> into
    /// <paramref name="data"/> (fewer means end of file). Holes go in as
    /// <see cref="ReadBuffer.AppendZeros"/>, which copies nothing.
    /// </summary>
    int Read(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref ReadBuffer data) => Errno.ENOSYS;

    /// <param name="writeFlags">FUSE_WRITE_CACHE, FUSE_WRITE_LOCKOWNER, FUSE_WRITE_KILL_SUIDGID.</param>
    int Write(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ReadOnlySpan<byte> data, uint writeFlags, out int bytesWritten)
    {
        bytesWritten = 0;
        return Errno.ENOSYS;
    }

    int StatFs(FuseRequestContext ctx, NodeId node, out FuseKStatFs stat)
    {
        stat = default;
        return Errno.ENOSYS;
    }

    /// <summary>RELEASE: the last reference to an open file is gone. The reply's error is ignored by the kernel.</summary>
    int Release(FuseRequestContext ctx, NodeId node, FileHandle fh, int flags, uint releaseFlags, ulong lockOwner) => Errno.Success;

    int Fsync(FuseRequestContext ctx, NodeId node, FileHandle fh, bool dataOnly) => Errno.ENOSYS;

    int SetXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags) => Errno.ENOSYS;

    /// <summary>
    /// GETXATTR. With an empty <paramref name="value"/> the caller only wants the size: set
    /// <paramref name="size"/> to the value's length. Otherwise copy it and set the length, or
    /// return ERANGE when it does not fit.
    /// </summary>
    int GetXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name, Span<byte> value, out int size)
    {
        size = 0;
        return Errno.ENOSYS;
    }

    /// <summary>LISTXATTR: NUL-terminated names, with the same size-query rule as <see cref="GetXattr"/>.</summary>
    int ListXattr(FuseRequestContext ctx, NodeId node, Span<byte> names, out int size)
    {
        size = 0;
        return Errno.ENOSYS;
    }

    int RemoveXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name) => Errno.ENOSYS;

    /// <summary>FLUSH: called on every close(2) of a descriptor.</summary>
    int Flush(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong lockOwner) => Errno.ENOSYS;

    int OpenDir(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        open = default;
        return Errno.Success;
    }

    /// <summary>READDIR and READDIRPLUS (see <see cref="DirectoryWriter.IsPlus"/>): add entries after <paramref name="offset"/> until the writer is full.</summary>
    int ReadDir(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref DirectoryWriter writer) => Errno.ENOSYS;

    int ReleaseDir(FuseRequestContext ctx, NodeId node, FileHandle fh, int flags) => Errno.Success;

    int FsyncDir(FuseRequestContext ctx, NodeId node, FileHandle fh, bool dataOnly) => Errno.ENOSYS;

    int GetLk(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong owner, in FuseFileLock lk, out FuseFileLock conflict)
    {
        conflict = default;
        return Errno.ENOSYS;
    }

    /// <param name="sleep">SETLKW: wait for the lock (check ctx.IsInterrupted while waiting).</param>
    /// <param name="flock">The request comes from flock(2) rather than fcntl(2).</param>
    int SetLk(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong owner, in FuseFileLock lk, bool sleep, bool flock) => Errno.ENOSYS;

    int Access(FuseRequestContext ctx, NodeId node, int mask) => Errno.ENOSYS;

    int Create(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        entry = default;
        open = default;
        return Errno.ENOSYS;
    }

    int Fallocate(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, long length, int mode) => Errno.ENOSYS;

    int Lseek(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, int whence, out long result)
    {
        result = 0;
        return Errno.ENOSYS;
    }

    /// <summary>COPY_FILE_RANGE and COPY_FILE_RANGE_64 (the session caps the length for the 32-bit form).</summary>
    int CopyFileRange(FuseRequestContext ctx, NodeId nodeIn, FileHandle fhIn, long offsetIn, NodeId nodeOut, FileHandle fhOut, long offsetOut, ulong length, ulong flags, out ulong copied)
    {
        copied = 0;
        return Errno.ENOSYS;
    }

    int StatX(FuseRequestContext ctx, NodeId node, FileHandle? fh, uint statxFlags, uint mask, out FuseStatxOut statx)
    {
        statx = default;
        return Errno.ENOSYS;
    }

    int SyncFs(FuseRequestContext ctx) => Errno.ENOSYS;

    /// <summary>O_TMPFILE: an unnamed regular file in <paramref name="parent"/>, opened.</summary>
    int TmpFile(FuseRequestContext ctx, NodeId parent, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        entry = default;
        open = default;
        return Errno.ENOSYS;
    }

    int Bmap(FuseRequestContext ctx, NodeId node, ulong block, uint blockSize, out ulong result)
    {
        result = 0;
        return Errno.ENOSYS;
    }

    /// <summary>The answer to a <see cref="FuseNotifier.Retrieve"/>: the kernel's cached bytes of the node.</summary>
    void RetrieveReply(ulong notifyUnique, NodeId node, long offset, ReadOnlySpan<byte> data) { }
}
