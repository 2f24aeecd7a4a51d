// Group commit: the only place metadata reaches the disk. See the top of Store.cs for the
// ordering argument (fdatasync pages.dat -> one synchronous LMDB transaction -> recycle slots).
//
// The background committer bounds what an unsynced crash can lose and how many freed slots
// wait for reuse: it commits every CommitInterval while there is work, and at once when
// CommitAfterPages pages were written or freed since the last commit.
using LightningDB;

namespace DedupFs.Store;

public sealed partial class Store
{
    private Thread? _committer;
    private readonly AutoResetEvent _commitWanted = new(false);
    private volatile bool _stopCommitter;
    private long _metadataChanges;
    private long _commits;

    /// <summary>Commits completed since the store opened.</summary>
    public long CommitCount => Interlocked.Read(ref _commits);

    /// <summary>Makes everything done so far durable: the sync point (fsync, fdatasync, syncfs, unmount).
    /// Must not be called while holding a <see cref="MutationScope"/>.</summary>
    public void Commit()
    {
        ThrowIfPoisoned();
        // Flush page data before excluding writers: the fdatasync under the gate then finds
        // little left to write, so writers pause for the metadata commit only, not for the
        // bulk of the data (hundreds of MiB after a 5-second interval of streaming writes).
        if (_pageFileDirty) Interop.Libc.fdatasync((int)_pageFile.DangerousGetHandle());
        _gate.EnterWriteLock();
        try
        {
            Committing?.Invoke(); // see Store.Committing.cs
            CommitLocked();
        }
        finally
        {
            _gate.ExitWriteLock();
        }
    }

    private volatile Exception? _poisoned;

    /// <summary>Stops all further commits and mutations after an operation failed half-way for a reason it
    /// could not undo (a bug, or an I/O error in the middle of an update): the in-memory state may be
    /// inconsistent, so it must never reach the disk. The last commit stays intact; reopen (and fsck).</summary>
    public void Poison(Exception cause)
    {
        if (_poisoned != null) return;
        _poisoned = cause;
        Log($"dedupfs store {Directory}: internal error, store is now read-only until reopened (last commit intact): {cause}");
    }

    /// <summary>Whether <see cref="Poison"/> was called.</summary>
    public bool IsPoisoned => _poisoned != null;

    private void ThrowIfPoisoned()
    {
        if (_poisoned is { } cause)
            throw new StoreException($"{Directory}: store stopped after an internal error ({cause.Message}); reopen it", 30 /* EROFS */, cause);
    }

    internal void NoteMetadataChange() => Interlocked.Increment(ref _metadataChanges);

    private void NotePageWork(int pages = 1)
    {
        long limit = _options.CommitAfterPages;
        long total = Interlocked.Add(ref _pagesSinceCommit, pages);
        if (limit > 0 && total >= limit && total - pages < limit) _commitWanted.Set();
    }

    private void CommitLocked()
    {
        List<long> pageChunks = _pages.DirtyChunkList();
        List<ulong> deleted;
        lock (_deletedLock) deleted = [.. _deletedMappings];
        var dirtyTables = new List<SlotTable>();
        foreach (SlotTable t in _tables.Values)
        {
            if (t.LengthDirty) { dirtyTables.Add(t); continue; }
            foreach (SlotTable.Chunk? c in t.Chunks)
                if (c is { Dirty: true }) { dirtyTables.Add(t); break; }
        }
        BlobTable[] blobs = [Inodes, Dirents, Xattrs, Values];
        bool blobsDirty = blobs.Any(b => b.IsDirty);
        long highWater = _pages.HighWater;

        if (pageChunks.Count == 0 && deleted.Count == 0 && dirtyTables.Count == 0 && !blobsDirty && highWater == _committedHighWater)
        {
            _pages.PromotePending(); // nothing pending can exist without a dirty chunk, but be exact
            return;
        }

        // 1. Page data first: the metadata below will reach these pages.
        if (_pageFileDirty)
        {
            if (Interop.Libc.fdatasync((int)_pageFile.DangerousGetHandle()) != 0)
                throw new StoreException($"{Directory}: fdatasync({StoreFormat.PageFileName}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            _pageFileDirty = false;
        }

        // 2. All metadata in one transaction, synchronous commit.
        var written = new List<SlotTable.Chunk>();
        using (LightningTransaction tx = _env.BeginTransaction())
        {
            Span<byte> key8 = stackalloc byte[8];
            foreach (long chunk in pageChunks)
            {
                StoreFormat.WriteU64(key8, (ulong)chunk);
                tx.Put(_pagesDb, key8, BlobTable.Seal(key8, _pages.ChunkBytes(chunk))).ThrowOnError();
            }
            StoreFormat.WriteU64(key8, (ulong)highWater);
            tx.Put(_headerDb, StoreFormat.HighWaterKey, BlobTable.Seal(StoreFormat.HighWaterKey, key8)).ThrowOnError();

            foreach (ulong inode in deleted) DeleteMappingRecords(tx, inode);
            foreach (SlotTable t in dirtyTables) WriteSlotTable(tx, t, written);
            foreach (BlobTable b in blobs) b.WriteOverlay(tx);
            tx.Commit().ThrowOnError();
        }

        // 3. Durable: clear the dirty state and recycle the slots this commit freed.
        _pages.ClearDirty();
        foreach (SlotTable.Chunk c in written) c.Dirty = false;
        foreach (SlotTable t in dirtyTables) t.LengthDirty = false;
        foreach (BlobTable b in blobs) b.ClearOverlay();
        lock (_deletedLock) _deletedMappings.ExceptWith(deleted);
        _committedHighWater = highWater;
        _pages.PromotePending();
        Interlocked.Exchange(ref _pagesSinceCommit, 0);
        Interlocked.Increment(ref _commits);
    }

    private void DeleteMappingRecords(LightningTransaction tx, ulong inode)
    {
        tx.Delete(_mapLenDb, StoreFormat.U64Key(inode));
        var keys = new List<byte[]>();
        using (LightningCursor cursor = tx.CreateCursor(_mapsDb))
        {
            var (rc, k, _) = cursor.SetRange(StoreFormat.U64U64Key(inode, 0)) == MDBResultCode.Success ? cursor.GetCurrent() : (MDBResultCode.NotFound, default, default);
            while (rc == MDBResultCode.Success && StoreFormat.ReadU64(k.AsSpan()) == inode)
            {
                keys.Add(k.CopyToNewArray());
                (rc, k, _) = cursor.Next();
            }
        }
        foreach (byte[] k in keys) tx.Delete(_mapsDb, k);
    }

    private void WriteSlotTable(LightningTransaction tx, SlotTable t, List<SlotTable.Chunk> written)
    {
        if (t.LengthDirty)
        {
            byte[] key = StoreFormat.U64Key(t.Inode);
            Span<byte> len = stackalloc byte[8];
            StoreFormat.WriteU64(len, (ulong)t.Length);
            tx.Put(_mapLenDb, key, BlobTable.Seal(key, len)).ThrowOnError();
        }
        SlotTable.Chunk?[] chunks = t.Chunks;
        for (long c = 0; c < chunks.Length; c++)
        {
            SlotTable.Chunk? chunk = chunks[c];
            if (chunk is not { Dirty: true }) continue;
            written.Add(chunk);
            byte[] key = StoreFormat.U64U64Key(t.Inode, (ulong)c);
            int used = chunk.Ids.AsSpan().LastIndexOfAnyExcept(0u) + 1;
            if (used == 0)
            {
                if (chunk.Persisted) tx.Delete(_mapsDb, key);
                chunk.Persisted = false;
                continue;
            }
            ReadOnlySpan<byte> ids = System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.Ids.AsSpan(0, used));
            tx.Put(_mapsDb, key, BlobTable.Seal(key, ids)).ThrowOnError();
            chunk.Persisted = true;
        }
    }

    private void StartBackgroundCommit()
    {
        if (_options.CommitInterval == null && _options.CommitAfterPages <= 0) return;
        _committer = new Thread(CommitLoop) { IsBackground = true, Name = "dedupfs-commit" };
        _committer.Start();
    }

    private void StopBackgroundCommit()
    {
        _stopCommitter = true;
        _commitWanted.Set();
        _committer?.Join();
    }

    private void CommitLoop()
    {
        int wait = _options.CommitInterval is { } iv ? (int)Math.Max(1, iv.TotalMilliseconds) : Timeout.Infinite;
        long seenMeta = 0;
        while (!_stopCommitter)
        {
            _commitWanted.WaitOne(wait);
            if (_stopCommitter) break;
            if (IsPoisoned) continue;
            long meta = Interlocked.Read(ref _metadataChanges);
            if (Interlocked.Read(ref _pagesSinceCommit) == 0 && meta == seenMeta && !AnyTableDirty()) continue;
            seenMeta = meta;
            try
            {
                Commit();
            }
            catch (Exception e)
            {
                Log($"dedupfs store {Directory}: background commit failed: {e.Message}");
            }
        }
    }

    private bool AnyTableDirty()
    {
        foreach (SlotTable t in _tables.Values)
        {
            if (t.LengthDirty) return true;
            foreach (SlotTable.Chunk? c in t.Chunks)
                if (c is { Dirty: true }) return true;
        }
        return false;
    }
}
