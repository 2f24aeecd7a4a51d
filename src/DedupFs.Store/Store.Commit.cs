// Group commit: the only place metadata reaches the disk. See the top of Store.cs for the
// ordering argument (fdatasync pages.dat -> one synchronous LMDB transaction -> recycle slots).
//
// Double buffering. A commit used to hold the gate, and so stop every writer, through a
// second fdatasync and the LMDB transaction (tens of milliseconds to seconds on a busy disk).
// Now it holds both gates exclusively only to take a snapshot: it copies every dirty
// page-table and slot-table chunk (sealed, ready to put), marks them clean and takes the list
// of slots freed so far. Then it releases the page gate: file data writers go on, making the
// live tables dirty again for the next commit, while this one flushes pages.dat, writes the
// snapshot and the blob overlays in one transaction and commits. The durability rules hold:
//   - the fdatasync runs after the snapshot, so every page the snapshot reaches is on disk
//     before the metadata that reaches it;
//   - the slots a snapshot freed are recycled only after its transaction is durable; slots
//     freed meanwhile wait for the next commit, whose snapshot records them free;
//   - a failed commit puts everything it took back (dirty bits, pending slots), so nothing is
//     lost for the next one.
// The blob tables keep one overlay generation, written from where it lives, so blob writers
// (and everything else that takes the metadata gate) still wait for the transaction; a second
// overlay generation in BlobTable would let them through too.
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

    private long _maxPauseTicks;

    /// <summary>The longest time a commit kept page writers out (from asking for the page gate, which stops new
    /// writers, to releasing it) since the store opened or <see cref="ResetCommitWriterPause"/>.</summary>
    public TimeSpan MaxCommitWriterPause => TimeSpan.FromTicks(Interlocked.Read(ref _maxPauseTicks));

    /// <summary>Starts a new measurement of <see cref="MaxCommitWriterPause"/>.</summary>
    public void ResetCommitWriterPause() => Interlocked.Exchange(ref _maxPauseTicks, 0);

    private void NotePageGatePause(TimeSpan pause)
    {
        long ticks = pause.Ticks, cur;
        while ((cur = Interlocked.Read(ref _maxPauseTicks)) < ticks && Interlocked.CompareExchange(ref _maxPauseTicks, ticks, cur) != cur) { }
    }

    /// <summary>Makes everything done so far durable: the sync point (fsync, fdatasync, syncfs, unmount).
    /// Must not be called while holding a <see cref="MutationScope"/>.</summary>
    public void Commit()
    {
        ThrowIfPoisoned();
        // Flush page data before excluding anyone: the fdatasync after the snapshot then finds
        // little left to write (hundreds of MiB after a 5-second interval of streaming writes).
        if (_pageFileDirty) Interop.Libc.fdatasync((int)_pageFile.DangerousGetHandle());
        _gate.EnterWriteLock();
        try
        {
            // The filesystem's dirty inode records join this commit (Store.Committing.cs). Page
            // writers may still run: the hook only reads records under their own locks, and a
            // record that changes after it was taken is dirty again for the next commit.
            Committing?.Invoke();
            CommitSnapshot? snapshot;
            long asked = System.Diagnostics.Stopwatch.GetTimestamp();
            _pageGate.EnterWriteLock();
            try
            {
                // Every mutation is excluded here, and only here.
                snapshot = TakeSnapshot();
            }
            catch (Exception e)
            {
                Poison(e);   // dirty marks may be half cleared: this state must never be committed
                throw;
            }
            finally
            {
                _pageGate.ExitWriteLock();
                NotePageGatePause(System.Diagnostics.Stopwatch.GetElapsedTime(asked));
            }
            // Page writers run again from here on; metadata mutations wait for the transaction.
            if (snapshot != null) WriteSnapshot(snapshot);
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

    /// <summary>Tests only: runs after the snapshot, with the page gate released (writers may run), before the
    /// commit writes anything; an exception from it fails the commit.</summary>
    internal Action? AfterSnapshotForTests;

    // What one commit writes, copied while every mutation was excluded, so that the
    // transaction can run while page writers change the live tables. Also what a failed
    // commit gives back (Restore), so that nothing it took is lost for the next one.
    private sealed class CommitSnapshot
    {
        public readonly List<(long Chunk, byte[] Value)> PageChunks = [];
        public readonly List<(byte[] Key, byte[]? Value)> MapChunks = [];   // null: delete the record
        public readonly List<(byte[] Key, byte[] Value)> MapLengths = [];
        public readonly List<SlotTable.Chunk> TakenChunks = [];
        public readonly List<SlotTable> TakenLengths = [];
        public List<ulong> Deleted = [];
        public List<uint> Frees = [];
        public long HighWater;
        public bool SyncPages;
        public long PagesCounted;
    }

    // Under both gates, exclusively: copies the dirty metadata, marks it clean, takes the slots
    // freed so far. Null when there is nothing to write. Copying is cheap beside the
    // transaction: 4 KiB per dirty chunk, about 5 MB after a GiB of new pages.
    private CommitSnapshot? TakeSnapshot()
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
        bool blobsDirty = Inodes.IsDirty || Dirents.IsDirty || Xattrs.IsDirty || Values.IsDirty;
        long highWater = _pages.HighWater;
        if (pageChunks.Count == 0 && deleted.Count == 0 && dirtyTables.Count == 0 && !blobsDirty && highWater == _committedHighWater)
        {
            _pages.Promote(_pages.TakePending()); // nothing pending can exist without a dirty chunk, but be exact
            return null;
        }

        var snap = new CommitSnapshot { Deleted = deleted, HighWater = highWater };
        foreach (long chunk in pageChunks)
        {
            byte[] key = StoreFormat.U64Key((ulong)chunk);
            snap.PageChunks.Add((chunk, BlobTable.Seal(key, _pages.ChunkBytes(chunk))));
        }
        _pages.ClearDirty();
        foreach (SlotTable t in dirtyTables) SnapshotSlotTable(t, snap);
        snap.Frees = _pages.TakePending();
        snap.SyncPages = _pageFileDirty;
        _pageFileDirty = false;
        snap.PagesCounted = Interlocked.Exchange(ref _pagesSinceCommit, 0);
        return snap;
    }

    private static void SnapshotSlotTable(SlotTable t, CommitSnapshot snap)
    {
        if (t.LengthDirty)
        {
            byte[] key = StoreFormat.U64Key(t.Inode);
            Span<byte> len = stackalloc byte[8];
            StoreFormat.WriteU64(len, (ulong)t.Length);
            snap.MapLengths.Add((key, BlobTable.Seal(key, len)));
            t.LengthDirty = false;
            snap.TakenLengths.Add(t);
        }
        SlotTable.Chunk?[] chunks = t.Chunks;
        for (long c = 0; c < chunks.Length; c++)
        {
            SlotTable.Chunk? chunk = chunks[c];
            if (chunk is not { Dirty: true }) continue;
            chunk.Dirty = false;
            snap.TakenChunks.Add(chunk);
            byte[] key = StoreFormat.U64U64Key(t.Inode, (ulong)c);
            int used = chunk.Ids.AsSpan().LastIndexOfAnyExcept(0u) + 1;
            if (used == 0)
            {
                if (chunk.Persisted) snap.MapChunks.Add((key, null));
                chunk.Persisted = false;
                continue;
            }
            ReadOnlySpan<byte> ids = System.Runtime.InteropServices.MemoryMarshal.AsBytes(chunk.Ids.AsSpan(0, used));
            snap.MapChunks.Add((key, BlobTable.Seal(key, ids)));
            chunk.Persisted = true;
        }
    }

    // Outside the page gate, inside the metadata gate: 1. page data, 2. one synchronous LMDB
    // transaction, 3. recycle the slots the snapshot freed (see the top of Store.cs).
    private void WriteSnapshot(CommitSnapshot snap)
    {
        BlobTable[] blobs = [Inodes, Dirents, Xattrs, Values];
        try
        {
            AfterSnapshotForTests?.Invoke();

            // 1. Page data first: the metadata below will reach these pages. Pages written after
            // the snapshot are flushed too, which costs nothing but time.
            if (snap.SyncPages && Interop.Libc.fdatasync((int)_pageFile.DangerousGetHandle()) != 0)
                throw new StoreException($"{Directory}: fdatasync({StoreFormat.PageFileName}) failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            // The flushed pages are clean now: out of the kernel's cache, the daemon caches them.
            if (snap.SyncPages) DropHostCache();

            // 2. All metadata in one transaction, synchronous commit.
            using LightningTransaction tx = _env.BeginTransaction();
            Span<byte> key8 = stackalloc byte[8];
            foreach ((long chunk, byte[] value) in snap.PageChunks)
            {
                StoreFormat.WriteU64(key8, (ulong)chunk);
                tx.Put(_pagesDb, key8, value).ThrowOnError();
            }
            StoreFormat.WriteU64(key8, (ulong)snap.HighWater);
            tx.Put(_headerDb, StoreFormat.HighWaterKey, BlobTable.Seal(StoreFormat.HighWaterKey, key8)).ThrowOnError();

            foreach (ulong inode in snap.Deleted) DeleteMappingRecords(tx, inode);
            foreach ((byte[] key, byte[]? value) in snap.MapChunks)
            {
                if (value == null) tx.Delete(_mapsDb, key);
                else tx.Put(_mapsDb, key, value).ThrowOnError();
            }
            foreach ((byte[] key, byte[] value) in snap.MapLengths) tx.Put(_mapLenDb, key, value).ThrowOnError();
            foreach (BlobTable b in blobs) b.WriteOverlay(tx);   // stable: blob writers wait at the metadata gate
            tx.Commit().ThrowOnError();
        }
        catch
        {
            Restore(snap);
            throw;
        }

        // 3. Durable: drop what it wrote from memory and recycle the slots it freed.
        foreach (BlobTable b in blobs) b.ClearOverlay();
        lock (_deletedLock) _deletedMappings.ExceptWith(snap.Deleted);
        _committedHighWater = snap.HighWater;
        _pages.Promote(snap.Frees);
        Interlocked.Increment(ref _commits);
    }

    // A failed commit: everything it took is dirty (or pending) again, so the next commit
    // writes it; nothing it freed was recycled.
    private void Restore(CommitSnapshot snap)
    {
        foreach ((long chunk, _) in snap.PageChunks) _pages.MarkDirty(chunk * StoreFormat.PagesPerChunk);
        foreach (SlotTable.Chunk c in snap.TakenChunks)
        {
            c.Persisted = true;   // the record may still exist: let the retry delete it if empty
            c.Dirty = true;
        }
        foreach (SlotTable t in snap.TakenLengths) t.LengthDirty = true;
        _pages.ReturnPending(snap.Frees);
        if (snap.SyncPages) _pageFileDirty = true;
        Interlocked.Add(ref _pagesSinceCommit, snap.PagesCounted);
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
