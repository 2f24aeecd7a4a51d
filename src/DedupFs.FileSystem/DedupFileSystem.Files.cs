// OPEN, READ, WRITE, RELEASE, FLUSH, FSYNC, FALLOCATE, LSEEK, COPY_FILE_RANGE, SYNCFS.
//
// Data goes straight to the inode's mapping: no filesystem lock on READ or WRITE, and no
// metadata I/O either — the size lives in the mapping, and mtime/ctime/atime changes only mark
// the inode dirty for the next commit (InodeTable.WriteDirty). Holes are answered with
// ReadBuffer.AppendZeros, which copies nothing.
//
// COPY_FILE_RANGE is a reflink where it can be: the page-aligned middle of the range is
// cloned (pages shared, nothing copied); the unaligned head and tail are copied as bytes,
// except a tail that ends at the source's end of file and covers the destination's end,
// whose last partial page is shared whole. Ranges whose offsets differ within a page cannot
// share pages and are copied.
using System.Buffers;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;
using DedupFs.Pages;

namespace DedupFs.FileSystem;

public sealed partial class DedupFileSystem
{
    private const int FallocKeepSize = 1, FallocPunchHole = 2, FallocZeroRange = 0x10;
    private const int SeekSet = 0, SeekCur = 1, SeekEnd = 2, SeekData = 3, SeekHole = 4;
    private const long RelatimeWindowNs = 24L * 3600 * 1_000_000_000;

    public int Open(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        open = default;
        if (ControlDirectory.Owns(node.Value)) return _control.Open(ctx, node.Value, flags, out open);
        Inode? n;
        try
        {
            lock (_ns)
            {
                n = _inodes.Get(node.Value);
                if (n == null) return Errno.ENOENT;
                if (n.IsDir) return Errno.EISDIR;
                int rc = OpenLocked(n, flags, out open);
                if (rc != 0) return rc;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
        return TruncateOnOpen(n, flags, ref open);
    }

    // Registers a handle on n. Namespace lock held. O_TRUNC is applied after the lock is
    // released (TruncateOnOpen): emptying a large file takes time, and the open handle keeps
    // the inode alive meanwhile.
    private int OpenLocked(Inode n, int flags, out FuseOpenOut open)
    {
        open = default;
        bool writable = (flags & OAccMode) != 0;
        if (writable && ReadOnly) return Errno.EROFS;
        n.OpenHandles++;
        open.Fh = _handles.Add(new OpenFile(n, flags));
        if (n.IsReg) open.OpenFlags = Options.Cache == CacheMode.Shared ? OpenReplyFlags.DirectIo : OpenReplyFlags.KeepCache;
        return Errno.Success;
    }

    // O_TRUNC (the session negotiates ATOMIC_O_TRUNC, so it arrives with OPEN). Namespace lock not
    // held. On failure the handle just registered is dropped again.
    private int TruncateOnOpen(Inode n, int flags, ref FuseOpenOut open)
    {
        if ((flags & OTrunc) == 0 || (flags & OAccMode) == 0 || !n.IsReg) return Errno.Success;
        try
        {
            // Times move even when the file is already empty (POSIX open, O_TRUNC).
            if (n.Mapping!.Length > 0) n.Mapping.Truncate(0);
            Touch(n, mtime: true, ctime: true);
            _inodes.MarkDirty(n);
            return Errno.Success;
        }
        catch (Exception e)
        {
            _handles.Remove(open.Fh);
            lock (_ns)
            {
                n.OpenHandles--;
                _inodes.MaybeRelease(n);
            }
            open = default;
            return Fail(e);
        }
    }

    public int Release(FuseRequestContext ctx, NodeId node, FileHandle fh, int flags, uint releaseFlags, ulong lockOwner)
    {
        object? h = _handles.Remove(fh.Value);
        if (h is ControlHandle) return Errno.Success;
        if (h is not OpenFile file) return Errno.Success;
        lock (_ns)
        {
            try
            {
                file.Node.OpenHandles--;
                _inodes.MaybeRelease(file.Node);
            }
            catch (Exception e)
            {
                return Fail(e);
            }
        }
        FreeDoomed();
        return Errno.Success;
    }

    public int Flush(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong lockOwner) => Errno.Success;

    public int Fsync(FuseRequestContext ctx, NodeId node, FileHandle fh, bool dataOnly) => Sync();

    public int SyncFs(FuseRequestContext ctx) => Sync();

    private int Sync()
    {
        try
        {
            Engine.Sync();
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // The regular file behind a request on an open handle.
    private Inode? FileOf(NodeId node, FileHandle fh, out OpenFile? handle)
    {
        handle = _handles.Get<OpenFile>(fh.Value);
        return handle?.Node ?? Node(node);
    }

    public int Read(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref ReadBuffer data)
    {
        if (ControlDirectory.Owns(node.Value)) return _control.Read(fh.Value, offset, ref data);
        try
        {
            Inode? n = FileOf(node, fh, out _);
            if (n == null) return Errno.ENOENT;
            if (!n.IsReg) return n.IsDir ? Errno.EISDIR : Errno.EINVAL;
            Mapping m = n.Mapping!;
            long end = Math.Min(m.Length, offset + data.Size);
            long pos = offset;
            while (pos < end)
            {
                // One run of holes or of pages at a time: holes cost nothing, pages are read in one call.
                bool hole = m.PageAt(pos >> 12).IsNone;
                long runEnd = Math.Min(end, ((pos >> 12) + 1) << 12);
                while (runEnd < end && m.PageAt(runEnd >> 12).IsNone == hole) runEnd = Math.Min(end, runEnd + 4096);
                int count = (int)(runEnd - pos);
                if (hole)
                {
                    data.AppendZeros(count);
                }
                else
                {
                    Span<byte> span = data.Reserve(count);
                    int got = m.Read(pos, span);
                    if (got < count) span[got..].Clear(); // truncated meanwhile
                }
                pos = runEnd;
            }
            NoteAccess(n);
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // relatime: atime moves when it is older than mtime or ctime, or a day old.
    private void NoteAccess(Inode n)
    {
        if (ReadOnly) return;
        long now = Inode.Now();
        long atime = Volatile.Read(ref n.AtimeNs);
        if (atime > Volatile.Read(ref n.MtimeNs) && atime > Volatile.Read(ref n.CtimeNs) && now - atime < RelatimeWindowNs) return;
        lock (n.Lock) n.AtimeNs = now;
        _inodes.MarkDirty(n);
    }

    public int Write(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ReadOnlySpan<byte> data, uint writeFlags, out int bytesWritten)
    {
        bytesWritten = 0;
        if (ControlDirectory.Owns(node.Value)) return _control.Write(ctx, fh.Value, data, out bytesWritten);
        if (ReadOnly) return Errno.EROFS;
        try
        {
            Inode? n = FileOf(node, fh, out OpenFile? handle);
            if (n == null) return Errno.ENOENT;
            if (!n.IsReg) return n.IsDir ? Errno.EISDIR : Errno.EINVAL;
            Mapping m = n.Mapping!;
            if (handle is { Append: true })
            {
                lock (n.AppendLock)
                {
                    if (m.Length + data.Length > MaxFileSize) return Errno.EFBIG;
                    m.Write(m.Length, data);
                }
            }
            else
            {
                if (offset < 0) return Errno.EINVAL;
                if (offset + data.Length > MaxFileSize) return Errno.EFBIG;
                m.Write(offset, data);
            }
            AfterDataChange(n, ctx.Uid != 0 || (writeFlags & FuseConstants.WriteKillSuidGid) != 0);
            bytesWritten = data.Length;
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // mtime/ctime, and the privilege bits a write by anyone but root drops (file_remove_privs).
    private void AfterDataChange(Inode n, bool killPrivileges)
    {
        long now = Inode.Now();
        lock (n.Lock)
        {
            n.MtimeNs = n.CtimeNs = now;
            if (killPrivileges && (n.Mode & (Inode.SetUid | Inode.SetGid)) != 0) n.Mode &= ~KilledBits(n.Mode);
        }
        _inodes.MarkDirty(n);
    }

    public int Fallocate(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, long length, int mode)
    {
        if (ControlDirectory.Owns(node.Value)) return Errno.EOPNOTSUPP;
        if (ReadOnly) return Errno.EROFS;
        try
        {
            Inode? n = FileOf(node, fh, out _);
            if (n == null) return Errno.ENOENT;
            if (!n.IsReg) return Errno.ENODEV;
            if (offset < 0 || length <= 0) return Errno.EINVAL;
            if (offset + length > MaxFileSize) return Errno.EFBIG;
            Mapping m = n.Mapping!;
            switch (mode)
            {
                case 0:
                    // No preallocation: pages are made on write. Only the size moves.
                    using (Engine.Store.EnterMutation())
                    {
                        if (offset + length > m.Length) m.Truncate(offset + length);
                    }
                    break;
                case FallocKeepSize:
                    return Errno.Success;
                case FallocPunchHole | FallocKeepSize:
                    m.PunchHole(offset, length);
                    break;
                case FallocZeroRange:
                case FallocZeroRange | FallocKeepSize:
                    m.ZeroRange(offset, length, keepSize: (mode & FallocKeepSize) != 0);
                    break;
                default:
                    return Errno.EOPNOTSUPP;
            }
            AfterDataChange(n, killPrivileges: false);
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int Lseek(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, int whence, out long result)
    {
        result = 0;
        if (ControlDirectory.Owns(node.Value)) return Errno.ESPIPE;
        try
        {
            Inode? n = FileOf(node, fh, out _);
            if (n == null) return Errno.ENOENT;
            long length = n.Size;
            switch (whence)
            {
                case SeekSet:
                case SeekCur:
                    result = offset;
                    return offset < 0 ? Errno.EINVAL : Errno.Success;
                case SeekEnd:
                    result = length + offset;
                    return result < 0 ? Errno.EINVAL : Errno.Success;
                case SeekData:
                case SeekHole:
                    if (offset < 0) return Errno.EINVAL;
                    if (offset >= length) return Errno.ENXIO;
                    if (!n.IsReg)
                    {
                        result = whence == SeekData ? offset : length;
                        return Errno.Success;
                    }
                    Mapping m = n.Mapping!;
                    bool wantData = whence == SeekData;
                    for (long idx = offset >> 12; idx << 12 < length; idx++)
                    {
                        if (m.PageAt(idx).IsNone != wantData)
                        {
                            result = Math.Max(offset, idx << 12);
                            return Errno.Success;
                        }
                    }
                    // No data after offset: ENXIO; the end of file is the implicit hole.
                    result = length;
                    return wantData ? Errno.ENXIO : Errno.Success;
                default:
                    return Errno.EINVAL;
            }
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    public int CopyFileRange(FuseRequestContext ctx, NodeId nodeIn, FileHandle fhIn, long offsetIn, NodeId nodeOut, FileHandle fhOut, long offsetOut, ulong length, ulong flags, out ulong copied)
    {
        copied = 0;
        if (ControlDirectory.Owns(nodeIn.Value) || ControlDirectory.Owns(nodeOut.Value)) return Errno.EXDEV;
        if (flags != 0 || offsetIn < 0 || offsetOut < 0) return Errno.EINVAL;
        if (ReadOnly) return Errno.EROFS;
        try
        {
            Inode? src = FileOf(nodeIn, fhIn, out _), dst = FileOf(nodeOut, fhOut, out _);
            if (src == null || dst == null) return Errno.ENOENT;
            if (!src.IsReg || !dst.IsReg) return src.IsDir || dst.IsDir ? Errno.EISDIR : Errno.EINVAL;
            long count = (long)Math.Min(length, (ulong)Math.Max(0, src.Mapping!.Length - offsetIn));
            if (count == 0) return Errno.Success;
            if (offsetOut + count > MaxFileSize) return Errno.EFBIG;
            if (src == dst && offsetIn < offsetOut + count && offsetOut < offsetIn + count) return Errno.EINVAL;
            copied = (ulong)CopyRange(src.Mapping, offsetIn, dst.Mapping!, offsetOut, count);
            AfterDataChange(dst, ctx.Uid != 0);
            // The kernel drops the destination's cached range itself after COPY_FILE_RANGE;
            // saying so costs one queued message and keeps older kernels right.
            InvalidateData(dst.Ino, offsetOut, (long)copied);
            return Errno.Success;
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    // Clones what can be shared and copies the rest; returns bytes done.
    internal long CopyRange(Mapping src, long srcOffset, Mapping dst, long dstOffset, long count)
    {
        const long mask = 4095;
        if ((srcOffset & mask) != (dstOffset & mask)) return CopyBytes(src, srcOffset, dst, dstOffset, count);
        long head = Math.Min(count, (4096 - (srcOffset & mask)) & mask);
        long middle = (count - head) & ~mask;
        long tail = count - head - middle;
        if (tail > 0 && srcOffset + count == src.Length && dstOffset + count >= dst.Length)
        {
            middle += tail; // the source's last partial page, shared whole (its tail is zeros)
            tail = 0;
        }
        long done = 0;
        if (head > 0) done += CopyBytes(src, srcOffset, dst, dstOffset, head);
        if (middle > 0) done += Engine.Clone(src, srcOffset + head, dst, dstOffset + head, middle);
        if (tail > 0) done += CopyBytes(src, srcOffset + head + middle, dst, dstOffset + head + middle, tail);
        return done;
    }

    private static long CopyBytes(Mapping src, long srcOffset, Mapping dst, long dstOffset, long count)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(count, 1 << 20));
        try
        {
            long done = 0;
            while (done < count)
            {
                int n = src.Read(srcOffset + done, buffer.AsSpan(0, (int)Math.Min(buffer.Length, count - done)));
                if (n <= 0) break;
                dst.Write(dstOffset + done, buffer.AsSpan(0, n));
                done += n;
            }
            return done;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
