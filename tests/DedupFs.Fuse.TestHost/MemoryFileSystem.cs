using System.Text;
using DedupFs.Fuse.Api;
using DedupFs.Fuse.Protocol;

namespace DedupFs.Fuse.TestHost;

/// <summary>
/// A small in-memory POSIX filesystem that exercises the FUSE layer in the mount tests:
/// files, directories, symlinks, hard links, xattrs, rename flags, copy_file_range, and exact
/// lookup counting (a node is freed only when it has no name, no open handle and no kernel
/// reference). One lock guards everything: this is a test double, not a fast filesystem.
/// The file "slow" blocks reads until the request is interrupted, for interrupt and crash tests.
/// </summary>
public sealed class MemoryFileSystem : IFuseFileSystem
{
    private const uint DirMode = 0x4000, RegMode = 0x8000, LnkMode = 0xA000, TypeMask = 0xF000;
    private const int XattrCreate = 1, XattrReplace = 2;

    private readonly object _lock = new();
    private readonly Dictionary<ulong, Node> _nodes = new();
    private ulong _nextIno = 2;
    private ulong _nextFh = 1;
    private long _interrupts;

    public MemoryFileSystem()
    {
        _nodes[1] = new Node(1, DirMode | 0x1ED) { Nlink = 2, Parent = 1 };
    }

    public LookupCounts Lookups { get; } = new();

    /// <summary>Requests that returned EINTR because the kernel interrupted them.</summary>
    public long Interrupts => Interlocked.Read(ref _interrupts);

    public bool Destroyed { get; private set; }

    public FuseConnection? Connection { get; private set; }

    /// <summary>Nodes still held in memory (the root included).</summary>
    public int NodeCount
    {
        get
        {
            lock (_lock)
            {
                return _nodes.Count;
            }
        }
    }

    /// <summary>Optional capabilities to ask for at INIT (writeback cache, locks, passthrough, ...).</summary>
    public InitFlags ExtraCapabilities { get; init; }

    /// <summary>Open every regular file with FOPEN_DIRECT_IO (bypassing the kernel's page cache).</summary>
    public bool DirectIo { get; init; }

    /// <summary>When set, regular files named here are opened in passthrough mode on this backing file.</summary>
    public Func<string, int>? PassthroughBacking { get; init; }

    /// <summary>Lock requests received: (node, type, start, end, sleep, flock).</summary>
    public List<(ulong Node, uint Type, ulong Start, ulong End, bool Sleep, bool Flock)> Locks { get; } = [];

    public int Reads => Volatile.Read(ref _reads);

    private int _reads;

    public void Init(FuseConnection connection)
    {
        connection.Want |= ExtraCapabilities;
        Connection = connection;
    }

    public void Destroy()
    {
        Destroyed = true;
        ReleaseSlowReaders();
    }

    /// <summary>Makes every blocked read of a slow file fail with EIO.</summary>
    public void ReleaseSlowReaders() => Volatile.Write(ref _releaseSlow, true);

    private bool _releaseSlow;

    public int Lookup(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, out FuseEntryOut entry)
    {
        lock (_lock)
        {
            entry = default;
            if (!TryDir(parent, out var dir, out int error))
            {
                return error;
            }

            if (!dir.Children!.TryGetValue(Key(name), out ulong ino))
            {
                return Errno.ENOENT;
            }

            entry = EntryFor(_nodes[ino]);
            return Errno.Success;
        }
    }

    public void Forget(NodeId node, ulong count)
    {
        lock (_lock)
        {
            if (Lookups.Forget(node, count))
            {
                MaybeFree(node.Value);
            }
        }
    }

    public int GetAttr(FuseRequestContext ctx, NodeId node, FileHandle? fh, out FuseAttrOut attr)
    {
        lock (_lock)
        {
            attr = default;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            attr.Attr = n.Attr();
            return Errno.Success;
        }
    }

    public int SetAttr(FuseRequestContext ctx, NodeId node, in FuseSetAttrIn changes, out FuseAttrOut attr)
    {
        lock (_lock)
        {
            attr = default;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            var now = DateTimeOffset.UtcNow;
            if ((changes.Valid & SetAttrValid.Mode) != 0) n.Mode = (n.Mode & TypeMask) | (changes.Mode & 0xFFF);
            if ((changes.Valid & SetAttrValid.Uid) != 0) n.Uid = changes.Uid;
            if ((changes.Valid & SetAttrValid.Gid) != 0) n.Gid = changes.Gid;
            if ((changes.Valid & SetAttrValid.Size) != 0)
            {
                if ((n.Mode & TypeMask) != RegMode)
                {
                    return Errno.EISDIR;
                }

                if (changes.Size > MaxFileSize)
                {
                    return Errno.EFBIG;
                }

                n.Resize((long)changes.Size);
                n.Mtime = now;
            }

            if ((changes.Valid & SetAttrValid.AtimeNow) != 0) n.Atime = now;
            else if ((changes.Valid & SetAttrValid.Atime) != 0) n.Atime = FromUnix(changes.Atime, changes.AtimeNsec);
            if ((changes.Valid & SetAttrValid.MtimeNow) != 0) n.Mtime = now;
            else if ((changes.Valid & SetAttrValid.Mtime) != 0) n.Mtime = FromUnix(changes.Mtime, changes.MtimeNsec);
            n.Ctime = now;
            attr.Attr = n.Attr();
            return Errno.Success;
        }
    }

    public int ReadLink(FuseRequestContext ctx, NodeId node, Span<byte> target, out int length)
    {
        lock (_lock)
        {
            length = 0;
            if (!_nodes.TryGetValue(node.Value, out var n) || n.Target is null)
            {
                return Errno.EINVAL;
            }

            n.Target.CopyTo(target);
            length = n.Target.Length;
            return Errno.Success;
        }
    }

    public int Symlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, out FuseEntryOut entry)
    {
        byte[] copy = target.ToArray();
        return MakeNode(ctx, parent, name, LnkMode | 0x1FF, n => n.Target = copy, out entry);
    }

    public int MkNod(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint rdev, uint umask, out FuseEntryOut entry) =>
        MakeNode(ctx, parent, name, mode & ~umask, n => n.Rdev = rdev, out entry);

    public int MkDir(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, out FuseEntryOut entry) =>
        MakeNode(ctx, parent, name, DirMode | (mode & ~umask & 0xFFF), null, out entry);

    public int Create(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        open = default;
        int status = MakeNode(ctx, parent, name, RegMode | (mode & ~umask & 0xFFF), null, out entry);
        if (status == Errno.Success)
        {
            lock (_lock)
            {
                _nodes[entry.NodeId].OpenHandles++;
                open.Fh = _nextFh++;
            }
        }

        return status;
    }

    public int Unlink(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name) => RemoveName(parent, name, directory: false);

    public int RmDir(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name) => RemoveName(parent, name, directory: true);

    public int Rename(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, NodeId newParent, ReadOnlySpan<byte> newName, uint flags)
    {
        lock (_lock)
        {
            if (!TryDir(parent, out var from, out int error) || !TryDir(newParent, out var to, out error))
            {
                return error;
            }

            string oldKey = Key(name), newKey = Key(newName);
            if (!from.Children!.TryGetValue(oldKey, out ulong moving))
            {
                return Errno.ENOENT;
            }

            bool exists = to.Children!.TryGetValue(newKey, out ulong replaced);
            if ((flags & FuseConstants.RenameExchange) != 0)
            {
                if (!exists)
                {
                    return Errno.ENOENT;
                }

                from.Children[oldKey] = replaced;
                to.Children[newKey] = moving;
                _nodes[moving].Parent = newParent.Value;
                _nodes[replaced].Parent = parent.Value;
                return Errno.Success;
            }

            if (exists && (flags & FuseConstants.RenameNoReplace) != 0)
            {
                return Errno.EEXIST;
            }

            if (exists && replaced != moving)
            {
                var victim = _nodes[replaced];
                if (victim.IsDir && victim.Children!.Count > 0)
                {
                    return Errno.ENOTEMPTY;
                }

                DropLink(to, newKey, victim);
            }

            from.Children.Remove(oldKey);
            to.Children[newKey] = moving;
            _nodes[moving].Parent = newParent.Value;
            _nodes[moving].Ctime = DateTimeOffset.UtcNow;
            return Errno.Success;
        }
    }

    public int Link(FuseRequestContext ctx, NodeId node, NodeId newParent, ReadOnlySpan<byte> newName, out FuseEntryOut entry)
    {
        lock (_lock)
        {
            entry = default;
            if (!TryDir(newParent, out var dir, out int error))
            {
                return error;
            }

            if (!_nodes.TryGetValue(node.Value, out var n) || n.IsDir)
            {
                return n is null ? Errno.ENOENT : Errno.EPERM;
            }

            string key = Key(newName);
            if (dir.Children!.ContainsKey(key))
            {
                return Errno.EEXIST;
            }

            dir.Children[key] = n.Ino;
            n.Nlink++;
            n.Ctime = DateTimeOffset.UtcNow;
            entry = EntryFor(n);
            return Errno.Success;
        }
    }

    public int Open(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        lock (_lock)
        {
            open = default;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            if ((flags & 0x200) != 0) // O_TRUNC, with FUSE_ATOMIC_O_TRUNC
            {
                n.Resize(0);
            }

            n.OpenHandles++;
            open.Fh = _nextFh++;
            // Slow files bypass the page cache: a read is then a synchronous request that a
            // signal interrupts, where a page-cache read would be asynchronous readahead.
            open.OpenFlags = n.Slow || DirectIo ? OpenReplyFlags.DirectIo : OpenReplyFlags.None;
            if (PassthroughBacking is not null && !n.IsDir && Connection is { } conn)
            {
                string name = _nodes[n.Parent].Children!.First(c => c.Value == n.Ino).Key;
                int backing = conn.BackingFiles.Open(PassthroughBacking(name));
                if (backing < 0)
                {
                    n.OpenHandles--;
                    return -backing;
                }

                open.OpenFlags = OpenReplyFlags.Passthrough;
                open.BackingId = backing;
                n.BackingIds.Add(backing);
            }

            return Errno.Success;
        }
    }

    public int Read(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref ReadBuffer data)
    {
        Interlocked.Increment(ref _reads);
        bool slow;
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            slow = n.Slow;
            if (!slow)
            {
                if (offset < n.Length)
                {
                    // All-zero 4 KiB runs go out as zero segments, as holes will in DedupFs:
                    // every mount test that reads such data exercises scattered replies.
                    var bytes = n.Data.AsSpan((int)offset, (int)Math.Min(data.Size, n.Length - offset));
                    while (bytes.Length > 0)
                    {
                        int run = Math.Min(bytes.Length, 4096 - (int)((offset + data.Length) % 4096));
                        if (bytes.Slice(0, run).ContainsAnyExcept((byte)0))
                        {
                            data.Append(bytes.Slice(0, run));
                        }
                        else
                        {
                            data.AppendZeros(run);
                        }

                        bytes = bytes.Slice(run);
                    }
                }

                n.Atime = DateTimeOffset.UtcNow;
                return Errno.Success;
            }
        }

        // "slow": block until the caller gives up (a signal reaches it as INTERRUPT), or the
        // test gives up on us, so that a worker is never stuck for good.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!ctx.IsInterrupted)
        {
            if (Volatile.Read(ref _releaseSlow) || DateTime.UtcNow > deadline)
            {
                return Errno.EIO;
            }

            Thread.Sleep(5);
        }

        Interlocked.Increment(ref _interrupts);
        return Errno.EINTR;
    }

    public int Write(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ReadOnlySpan<byte> data, uint writeFlags, out int bytesWritten)
    {
        lock (_lock)
        {
            bytesWritten = 0;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            long end = offset + data.Length;
            if (end > int.MaxValue)
            {
                return Errno.EFBIG;
            }

            if (end > n.Length)
            {
                n.Resize(end);
            }

            data.CopyTo(n.Data.AsSpan((int)offset));
            n.Mtime = n.Ctime = DateTimeOffset.UtcNow;
            bytesWritten = data.Length;
            return Errno.Success;
        }
    }

    public int StatFs(FuseRequestContext ctx, NodeId node, out FuseKStatFs stat)
    {
        lock (_lock)
        {
            long used = _nodes.Values.Sum(n => (n.Length + 4095) / 4096);
            stat = new FuseKStatFs
            {
                Bsize = 4096, Frsize = 4096, Blocks = 1 << 20, Bfree = (ulong)((1 << 20) - used), Bavail = (ulong)((1 << 20) - used),
                Files = 1 << 16, Ffree = (ulong)((1 << 16) - _nodes.Count), NameLen = 255,
            };
            return Errno.Success;
        }
    }

    public int Release(FuseRequestContext ctx, NodeId node, FileHandle fh, int flags, uint releaseFlags, ulong lockOwner)
    {
        lock (_lock)
        {
            if (_nodes.TryGetValue(node.Value, out var n))
            {
                n.OpenHandles--;
                if (n.OpenHandles == 0)
                {
                    foreach (int backing in n.BackingIds)
                    {
                        Connection?.BackingFiles.Close(backing);
                    }

                    n.BackingIds.Clear();
                }

                MaybeFree(node.Value);
            }

            return Errno.Success;
        }
    }

    public int Flush(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong lockOwner) => Errno.Success;

    public int Fsync(FuseRequestContext ctx, NodeId node, FileHandle fh, bool dataOnly) => Errno.Success;

    public int FsyncDir(FuseRequestContext ctx, NodeId node, FileHandle fh, bool dataOnly) => Errno.Success;

    public int SyncFs(FuseRequestContext ctx) => Errno.Success;

    public int SetXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, int flags)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            string key = Key(name);
            bool exists = n.Xattrs.ContainsKey(key);
            if ((flags & XattrCreate) != 0 && exists)
            {
                return Errno.EEXIST;
            }

            if ((flags & XattrReplace) != 0 && !exists)
            {
                return Errno.ENODATA;
            }

            n.Xattrs[key] = value.ToArray();
            n.Ctime = DateTimeOffset.UtcNow;
            return Errno.Success;
        }
    }

    public int GetXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name, Span<byte> value, out int size)
    {
        lock (_lock)
        {
            size = 0;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            if (!n.Xattrs.TryGetValue(Key(name), out var stored))
            {
                return Errno.ENODATA;
            }

            size = stored.Length;
            if (value.Length > 0)
            {
                if (stored.Length > value.Length)
                {
                    return Errno.ERANGE;
                }

                stored.CopyTo(value);
            }

            return Errno.Success;
        }
    }

    public int ListXattr(FuseRequestContext ctx, NodeId node, Span<byte> names, out int size)
    {
        lock (_lock)
        {
            size = 0;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            var all = n.Xattrs.Keys.SelectMany(k => Encoding.UTF8.GetBytes(k).Append((byte)0)).ToArray();
            size = all.Length;
            if (names.Length > 0)
            {
                if (all.Length > names.Length)
                {
                    return Errno.ERANGE;
                }

                all.CopyTo(names);
            }

            return Errno.Success;
        }
    }

    public int RemoveXattr(FuseRequestContext ctx, NodeId node, ReadOnlySpan<byte> name)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            return n.Xattrs.Remove(Key(name)) ? Errno.Success : Errno.ENODATA;
        }
    }

    public int OpenDir(FuseRequestContext ctx, NodeId node, int flags, out FuseOpenOut open)
    {
        open = default;
        lock (_lock)
        {
            return TryDir(node, out _, out int error) ? Errno.Success : error;
        }
    }

    public int ReadDir(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, ref DirectoryWriter writer)
    {
        lock (_lock)
        {
            if (!TryDir(node, out var dir, out int error))
            {
                return error;
            }

            // Offsets are positions in this listing: ".", "..", then the children in name order.
            var names = dir.Children!.ToArray();
            long total = names.Length + 2;
            for (long i = offset; i < total; i++)
            {
                ReadOnlySpan<byte> name;
                Node target;
                if (i == 0)
                {
                    name = "."u8;
                    target = dir;
                }
                else if (i == 1)
                {
                    name = ".."u8;
                    target = _nodes[dir.Parent];
                }
                else
                {
                    name = Encoding.UTF8.GetBytes(names[i - 2].Key);
                    target = _nodes[names[i - 2].Value];
                }

                var entry = writer.IsPlus && !DirectoryWriter.IsDotOrDotDot(name) ? EntryFor(target, count: false) : new FuseEntryOut { Attr = target.Attr() };
                if (!writer.TryAdd(name, in entry, (ulong)(i + 1)))
                {
                    break;
                }

                if (writer.CountsLookup(name, entry.NodeId))
                {
                    Lookups.Add(new NodeId(entry.NodeId));
                }
            }

            return Errno.Success;
        }
    }

    public int GetLk(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong owner, in FuseFileLock lk, out FuseFileLock conflict)
    {
        conflict = lk with { Type = 2 /* F_UNLCK: no conflicting lock */ };
        return Errno.Success;
    }

    public int SetLk(FuseRequestContext ctx, NodeId node, FileHandle fh, ulong owner, in FuseFileLock lk, bool sleep, bool flock)
    {
        lock (_lock)
        {
            Locks.Add((node.Value, lk.Type, lk.Start, lk.End, sleep, flock));
            return Errno.Success;
        }
    }

    /// <summary>Answers to notify-retrieve: (id, node, offset, bytes).</summary>
    public List<(ulong Unique, ulong Node, long Offset, byte[] Data)> Retrieved { get; } = [];

    public void RetrieveReply(ulong notifyUnique, NodeId node, long offset, ReadOnlySpan<byte> data)
    {
        lock (Retrieved)
        {
            Retrieved.Add((notifyUnique, node.Value, offset, data.ToArray()));
        }
    }

    public int TmpFile(FuseRequestContext ctx, NodeId parent, uint mode, uint umask, int flags, out FuseEntryOut entry, out FuseOpenOut open)
    {
        lock (_lock)
        {
            entry = default;
            open = default;
            if (!TryDir(parent, out _, out int error))
            {
                return error;
            }

            var n = new Node(_nextIno++, RegMode | (mode & ~umask & 0xFFF)) { Uid = ctx.Uid, Gid = ctx.Gid, Parent = parent.Value, Nlink = 0 };
            n.OpenHandles++;
            _nodes[n.Ino] = n;
            entry = EntryFor(n);
            open.Fh = _nextFh++;
            return Errno.Success;
        }
    }

    public int StatX(FuseRequestContext ctx, NodeId node, FileHandle? fh, uint statxFlags, uint mask, out FuseStatxOut statx)
    {
        lock (_lock)
        {
            statx = default;
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            var attr = n.Attr();
            statx.AttrValid = 1;
            statx.Stat = new FuseStatx
            {
                Mask = 0x7FF | 0x800, // STATX_BASIC_STATS | STATX_BTIME
                BlkSize = attr.BlkSize, Nlink = attr.Nlink, Uid = attr.Uid, Gid = attr.Gid, Mode = (ushort)attr.Mode,
                Ino = attr.Ino, Size = attr.Size, Blocks = attr.Blocks,
                Atime = new FuseSxTime { TvSec = (long)attr.Atime, TvNsec = attr.AtimeNsec },
                Mtime = new FuseSxTime { TvSec = (long)attr.Mtime, TvNsec = attr.MtimeNsec },
                Ctime = new FuseSxTime { TvSec = (long)attr.Ctime, TvNsec = attr.CtimeNsec },
                Btime = new FuseSxTime { TvSec = n.Birth.ToUnixTimeSeconds() },
            };
            return Errno.Success;
        }
    }

    public int Access(FuseRequestContext ctx, NodeId node, int mask)
    {
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            // access(2) semantics: root may read and write anything and execute what has any x bit.
            uint bits = ctx.Uid == 0 ? (uint)(0x6 | ((n.Mode & 0x49) != 0 ? 1 : 0))
                : ctx.Uid == n.Uid ? (n.Mode >> 6) & 7
                : ctx.Gid == n.Gid ? (n.Mode >> 3) & 7
                : n.Mode & 7;
            return ((uint)mask & 7 & ~bits) == 0 ? Errno.Success : Errno.EACCES;
        }
    }

    /// <summary>Files here live in one byte array: beyond 2 GiB is EFBIG, as a filesystem's size limit is.</summary>
    private const long MaxFileSize = int.MaxValue;

    public int Fallocate(FuseRequestContext ctx, NodeId node, FileHandle fh, long offset, long length, int mode)
    {
        const int KeepSize = 1, PunchHole = 2;
        lock (_lock)
        {
            if (!_nodes.TryGetValue(node.Value, out var n))
            {
                return Errno.ENOENT;
            }

            if ((mode & PunchHole) != 0)
            {
                long end = length > n.Length - offset ? n.Length : offset + length;
                if (end > offset)
                {
                    n.Data.AsSpan((int)offset, (int)(end - offset)).Clear();
                }

                return Errno.Success;
            }

            if ((mode & ~KeepSize) != 0)
            {
                return Errno.EOPNOTSUPP;
            }

            if (offset + length > MaxFileSize)
            {
                return Errno.EFBIG;
            }

            if ((mode & KeepSize) == 0 && offset + length > n.Length)
            {
                n.Resize(offset + length);
            }

            return Errno.Success;
        }
    }

    public int CopyFileRange(FuseRequestContext ctx, NodeId nodeIn, FileHandle fhIn, long offsetIn, NodeId nodeOut, FileHandle fhOut, long offsetOut, ulong length, ulong flags, out ulong copied)
    {
        lock (_lock)
        {
            copied = 0;
            if (!_nodes.TryGetValue(nodeIn.Value, out var source) || !_nodes.TryGetValue(nodeOut.Value, out var target))
            {
                return Errno.ENOENT;
            }

            long count = Math.Max(0, Math.Min((long)Math.Min(length, int.MaxValue), source.Length - offsetIn));
            if (offsetOut + count > MaxFileSize)
            {
                return Errno.EFBIG;
            }

            var bytes = source.Data.AsSpan((int)offsetIn, (int)count).ToArray();
            if (offsetOut + count > target.Length)
            {
                target.Resize(offsetOut + count);
            }

            bytes.CopyTo(target.Data.AsSpan((int)offsetOut));
            target.Mtime = DateTimeOffset.UtcNow;
            copied = (ulong)count;
            CopyFileRangeCalls++;
            return Errno.Success;
        }
    }

    /// <summary>How many COPY_FILE_RANGE requests reached the filesystem.</summary>
    public int CopyFileRangeCalls { get; private set; }

    /// <summary>Adds a file whose reads block until interrupted.</summary>
    public void AddSlowFile(string name)
    {
        lock (_lock)
        {
            var n = new Node(_nextIno++, RegMode | 0x1A4) { Slow = true, Parent = 1 };
            n.Resize(4096);
            _nodes[n.Ino] = n;
            _nodes[1].Children![name] = n.Ino;
        }
    }

    private int MakeNode(FuseRequestContext ctx, NodeId parent, ReadOnlySpan<byte> name, uint mode, Action<Node>? init, out FuseEntryOut entry)
    {
        lock (_lock)
        {
            entry = default;
            if (!TryDir(parent, out var dir, out int error))
            {
                return error;
            }

            if (name.Length > 255)
            {
                return Errno.ENAMETOOLONG;
            }

            string key = Key(name);
            if (dir.Children!.ContainsKey(key))
            {
                return Errno.EEXIST;
            }

            var n = new Node(_nextIno++, mode) { Uid = ctx.Uid, Gid = ctx.Gid, Parent = parent.Value };
            if (n.IsDir)
            {
                n.Nlink = 2;
                dir.Nlink++;
            }

            init?.Invoke(n);
            _nodes[n.Ino] = n;
            dir.Children[key] = n.Ino;
            dir.Mtime = dir.Ctime = DateTimeOffset.UtcNow;
            entry = EntryFor(n);
            return Errno.Success;
        }
    }

    private int RemoveName(NodeId parent, ReadOnlySpan<byte> name, bool directory)
    {
        lock (_lock)
        {
            if (!TryDir(parent, out var dir, out int error))
            {
                return error;
            }

            string key = Key(name);
            if (!dir.Children!.TryGetValue(key, out ulong ino))
            {
                return Errno.ENOENT;
            }

            var n = _nodes[ino];
            if (directory && !n.IsDir)
            {
                return Errno.ENOTDIR;
            }

            if (!directory && n.IsDir)
            {
                return Errno.EISDIR;
            }

            if (directory && n.Children!.Count > 0)
            {
                return Errno.ENOTEMPTY;
            }

            DropLink(dir, key, n);
            return Errno.Success;
        }
    }

    private void DropLink(Node dir, string key, Node n)
    {
        dir.Children!.Remove(key);
        dir.Mtime = dir.Ctime = DateTimeOffset.UtcNow;
        if (n.IsDir)
        {
            n.Nlink = 0;
            dir.Nlink--;
        }
        else
        {
            n.Nlink--;
        }

        n.Ctime = DateTimeOffset.UtcNow;
        MaybeFree(n.Ino);
    }

    /// <summary>Frees a node that has no name, no open handle and no kernel reference.</summary>
    private void MaybeFree(ulong ino)
    {
        if (ino != 1 && _nodes.TryGetValue(ino, out var n) && n.Nlink == 0 && n.OpenHandles <= 0 && Lookups[new NodeId(ino)] == 0)
        {
            _nodes.Remove(ino);
        }
    }

    private FuseEntryOut EntryFor(Node n, bool count = true)
    {
        if (count)
        {
            Lookups.Add(new NodeId(n.Ino));
        }

        return new FuseEntryOut { NodeId = n.Ino, Generation = 1, EntryValid = 1, AttrValid = 1, Attr = n.Attr() };
    }

    private bool TryDir(NodeId node, out Node dir, out int error)
    {
        if (!_nodes.TryGetValue(node.Value, out dir!))
        {
            error = Errno.ENOENT;
            return false;
        }

        error = dir.IsDir ? Errno.Success : Errno.ENOTDIR;
        return dir.IsDir;
    }

    private static string Key(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);

    private static DateTimeOffset FromUnix(ulong seconds, uint nanoseconds) =>
        DateTimeOffset.FromUnixTimeSeconds((long)seconds).AddTicks(nanoseconds / 100);

    private sealed class Node(ulong ino, uint mode)
    {
        public ulong Ino { get; } = ino;
        public uint Mode { get; set; } = mode;
        public uint Uid { get; set; }
        public uint Gid { get; set; }
        public uint Rdev { get; set; }
        public uint Nlink { get; set; } = 1;
        public ulong Parent { get; set; }
        public int OpenHandles { get; set; }
        public bool Slow { get; init; }
        public byte[] Data { get; private set; } = [];
        public long Length { get; private set; }
        public byte[]? Target { get; set; }
        public SortedDictionary<string, ulong>? Children { get; } = (mode & TypeMask) == DirMode ? new(StringComparer.Ordinal) : null;
        public Dictionary<string, byte[]> Xattrs { get; } = new(StringComparer.Ordinal);
        public List<int> BackingIds { get; } = [];
        public DateTimeOffset Birth { get; } = DateTimeOffset.FromUnixTimeSeconds(1_000_000_000); // a recognisable btime
        public DateTimeOffset Atime { get; set; } = DateTimeOffset.UtcNow;
        public DateTimeOffset Mtime { get; set; } = DateTimeOffset.UtcNow;
        public DateTimeOffset Ctime { get; set; } = DateTimeOffset.UtcNow;

        public bool IsDir => Children is not null;

        public void Resize(long length)
        {
            if (length > Data.Length)
            {
                var grown = new byte[Math.Max(length, Data.Length * 2L)];
                Data.AsSpan(0, (int)Length).CopyTo(grown);
                Data = grown;
            }
            else if (length < Length)
            {
                Data.AsSpan((int)length, (int)(Length - length)).Clear();
            }

            Length = length;
        }

        public FuseAttr Attr() => new()
        {
            Ino = Ino,
            Size = Target is { } t ? (ulong)t.Length : (ulong)Length,
            Blocks = (ulong)((Length + 511) / 512),
            Atime = (ulong)Atime.ToUnixTimeSeconds(), AtimeNsec = (uint)(Atime.Ticks % TimeSpan.TicksPerSecond * 100),
            Mtime = (ulong)Mtime.ToUnixTimeSeconds(), MtimeNsec = (uint)(Mtime.Ticks % TimeSpan.TicksPerSecond * 100),
            Ctime = (ulong)Ctime.ToUnixTimeSeconds(), CtimeNsec = (uint)(Ctime.Ticks % TimeSpan.TicksPerSecond * 100),
            Mode = Mode, Nlink = Nlink, Uid = Uid, Gid = Gid, Rdev = Rdev, BlkSize = 4096,
        };
    }
}
