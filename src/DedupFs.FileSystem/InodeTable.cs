// The live inode table and the kernel's references to inodes.
//
// An inode lives in memory while the kernel holds a lookup reference to it (every reply that
// carries an entry adds one, FORGET gives them back) or a file handle is open on it, and is
// loaded from Store.Inodes on demand. When both reach zero:
//   - nlink == 0: the inode is gone for good: its mapping is deleted (pages released), its
//     records, xattrs and orphan marker removed, in one store mutation — queued under the
//     namespace lock and done after it is released (FreeDoomed), since releasing the pages of
//     a large file takes time and nothing can reach the inode any more.
//   - nlink > 0: it may be dropped from memory, once its record and mapping are committed
//     (Engine.CloseMapping refuses a mapping with uncommitted changes: retried after the next
//     commit).
// An inode whose last name goes while it is still referenced gets an orphan marker in
// Store.Values, written in the same mutation as the unlink, so a crash leaves something the
// next mount sweeps (DedupFileSystem's constructor) rather than an unreachable file.
//
// Locking: every change of the table and of lookup/handle counts happens under the
// filesystem's namespace lock (the caller holds it); lookups on the read/write hot paths read
// the ConcurrentDictionary without it. Lock order: namespace lock -> store gate -> inode lock.
using System.Buffers.Binary;
using System.Collections.Concurrent;
using DedupFs.Pages;
using DedupFs.Store;

namespace DedupFs.FileSystem;

internal sealed class InodeTable
{
    private static readonly byte[] NextInoKey = "next-ino"u8.ToArray();
    private static readonly byte[] OrphanPrefix = "orphan/"u8.ToArray();

    private readonly PageEngine _engine;
    private readonly ConcurrentDictionary<ulong, Inode> _live = new();
    private readonly ConcurrentDictionary<ulong, Inode> _dirty = new();
    private readonly HashSet<ulong> _unloadLater = [];
    private readonly ConcurrentQueue<Inode> _doomed = new();
    private long _unloadCommit = -1;
    private ulong _nextIno;

    public InodeTable(PageEngine engine)
    {
        _engine = engine;
        _nextIno = Store.Values.TryGet(NextInoKey, out byte[] v) && v.Length == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(v) : 2;
    }

    private DedupFs.Store.Store Store => _engine.Store;

    public int LiveCount => _live.Count;

    /// <summary>The live inode, without loading (hot paths: the kernel holds a reference, so it is live).</summary>
    public Inode? TryGetLive(ulong ino) => _live.TryGetValue(ino, out Inode? n) ? n : null;

    /// <summary>The inode, loaded from the store if needed; null if it does not exist. Namespace lock held.</summary>
    public Inode? Get(ulong ino)
    {
        if (_live.TryGetValue(ino, out Inode? n)) return n;
        if (!Store.Inodes.TryGet(StoreKeys.Inode(ino), out byte[] record)) return null;
        n = Inode.Deserialize(ino, record) ?? throw new StoreException($"inode {ino}: unreadable record");
        if (n.IsReg) n.Mapping = _engine.OpenMapping(ino);
        _live[ino] = n;
        return n;
    }

    /// <summary>A new inode number (persisted with the caller's mutation). Namespace lock and store mutation held.</summary>
    public ulong Allocate()
    {
        ulong ino = _nextIno++;
        var v = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(v, _nextIno);
        Store.Values.Put(NextInoKey, v);
        return ino;
    }

    public ulong NextIno => _nextIno;

    /// <summary>Adds a brand-new inode to the table and writes its record. Namespace lock and store mutation held.</summary>
    public void Add(Inode n)
    {
        if (n.IsReg) n.Mapping = _engine.OpenMapping(n.Ino);
        _live[n.Ino] = n;
        Persist(n);
    }

    /// <summary>Writes the record now (namespace operations, SETATTR). Store mutation held; inode lock not held.</summary>
    public void Persist(Inode n)
    {
        byte[] record;
        lock (n.Lock) record = n.Serialize();
        Store.Inodes.Put(StoreKeys.Inode(n.Ino), record);
    }

    /// <summary>Notes that the record changed in memory only; it is written by the next commit.</summary>
    public void MarkDirty(Inode n)
    {
        if (_dirty.TryAdd(n.Ino, n)) Store.NoteExternalChange();
    }

    /// <summary>The store's Committing hook: writes every dirty record into the commit (gate held exclusively).</summary>
    public void WriteDirty()
    {
        foreach (ulong ino in _dirty.Keys)
        {
            if (!_dirty.TryRemove(ino, out Inode? n) || n.Dead) continue;
            byte[] record;
            lock (n.Lock) record = n.Serialize();
            Store.Inodes.Put(StoreKeys.Inode(ino), record);
        }
    }

    public void SetOrphan(ulong ino, bool orphan)
    {
        byte[] key = [.. OrphanPrefix, .. StoreKeys.Inode(ino)];
        if (orphan) Store.Values.Put(key, []);
        else if (Store.Values.TryGet(key, out _)) Store.Values.Delete(key);
    }

    /// <summary>Kernel references: one per entry reply. Namespace lock held.</summary>
    public void AddLookup(Inode n, long count = 1) => n.Lookups += count;

    /// <summary>FORGET. Namespace lock held.</summary>
    public void Forget(ulong ino, ulong count)
    {
        if (!_live.TryGetValue(ino, out Inode? n)) return;
        n.Lookups = Math.Max(0, n.Lookups - (long)Math.Min(count, long.MaxValue));
        MaybeRelease(n);
        RetryUnloads();
    }

    /// <summary>Unloads an inode nobody references any more, or queues it to be freed (nlink 0:
    /// <see cref="FreeDoomed"/>). Namespace lock held; store mutation NOT held: unloading calls
    /// Engine.CloseMapping, which takes the store's gate exclusively (a shared hold on this thread
    /// would make that a lock upgrade, which the gate refuses).</summary>
    public void MaybeRelease(Inode n)
    {
        if (n.Lookups > 0 || n.OpenHandles > 0 || n.Ino == FuseRoot || n.Dead) return;
        if (n.Nlink == 0)
        {
            // Unreachable from now on (no name, no reference, no handle, numbers never reused),
            // so the slow part — releasing every page — can run without the namespace lock.
            n.Dead = true;
            _live.TryRemove(n.Ino, out _);
            _dirty.TryRemove(n.Ino, out _);
            _unloadLater.Remove(n.Ino);
            _doomed.Enqueue(n);
        }
        else
        {
            TryUnload(n);
        }
    }

    /// <summary>Frees the inodes <see cref="MaybeRelease"/> queued: mapping, records, xattrs and orphan
    /// marker, in one store mutation each. Call with neither the namespace lock nor a mutation held.
    /// Until then the orphan marker keeps a crash from losing track of them.</summary>
    public void FreeDoomed()
    {
        while (_doomed.TryDequeue(out Inode? n)) Destroy(n);
    }

    public const ulong FuseRoot = 1;

    private void Destroy(Inode n)
    {
        using var gate = Store.EnterMutation();
        n.Dead = true;
        if (n.IsReg) _engine.DeleteMapping(n.Ino);
        Store.Inodes.Delete(StoreKeys.Inode(n.Ino));
        foreach (var (key, _) in Store.Xattrs.List(StoreKeys.XattrPrefix(n.Ino))) Store.Xattrs.Delete(key);
        SetOrphan(n.Ino, false);
    }

    private void TryUnload(Inode n)
    {
        if (_dirty.ContainsKey(n.Ino) || (n.IsReg && !_engine.CloseMapping(n.Ino)))
        {
            _unloadLater.Add(n.Ino);
            if (_unloadCommit < 0) _unloadCommit = Store.CommitCount;
            return;
        }
        _unloadLater.Remove(n.Ino);
        _live.TryRemove(n.Ino, out _);
    }

    // Unloads that waited for a commit, once one has happened.
    private void RetryUnloads()
    {
        if (_unloadLater.Count == 0 || Store.CommitCount == _unloadCommit) return;
        _unloadCommit = -1;
        foreach (ulong ino in _unloadLater.ToArray())
        {
            _unloadLater.Remove(ino);
            if (_live.TryGetValue(ino, out Inode? n)) MaybeRelease(n);
        }
    }

    /// <summary>At mount: frees every inode a crash left unlinked but not yet freed.</summary>
    public int SweepOrphans()
    {
        int swept = 0;
        foreach (var (key, _) in Store.Values.List(OrphanPrefix))
        {
            ulong ino = BinaryPrimitives.ReadUInt64BigEndian(key.AsSpan(OrphanPrefix.Length));
            Inode? n = Get(ino);
            if (n == null)
            {
                using (Store.EnterMutation()) Store.Values.Delete(key);
                continue;
            }
            if (n.Nlink == 0)
            {
                _live.TryRemove(ino, out _);
                Destroy(n);
                swept++;
            }
            else
            {
                using (Store.EnterMutation()) SetOrphan(ino, false);
            }
        }
        return swept;
    }
}
