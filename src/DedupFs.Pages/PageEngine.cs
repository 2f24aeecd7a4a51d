// The page-sharing core: content pages, their reference counts and content index, the page
// cache, and the mappings (one per regular file) that point at pages.
//
// Life of a page:
//   InstallPage(bytes): all zeros -> no page (a hole). Else hash; with inline dedup, ask the
//     content index for pages with that hash, take a reference on each candidate (so it
//     cannot be freed meanwhile), compare bytes, and share the first identical one. Otherwise
//     write a new page (Store), index it, cache it.
//   AddRef / ReleasePage: refcount == number of mapping slots pointing at the page (== |rmap|).
//     At 0 the page leaves the index and the cache, and its slot is recycled after the next
//     durable commit (Store).
// Pages never change bytes. A write always installs a new page; the old one is released.
// That one rule gives "a page never changes while shared or indexed" (invariant 3) and crash
// safety (durable metadata never reaches a rewritten page).
//
// The rmap is derived (Store.ComputeRmap): refcounts are maintained exactly, and Verify()
// recomputes both sides.
//
// Lock order: Store page gate (shared, per mutation; EnterPageMutation, never the metadata
// gate inside it) -> Mapping stripe locks (ascending; for a
// clone, source stripes are taken and released before destination stripes) -> ContentIndex
// stripe -> PageCache fill lock. Nothing here takes a lock while holding a later one.
using System.Collections.Concurrent;
using DedupFs.Store;

namespace DedupFs.Pages;

/// <summary>Content pages, mappings, the content index and the page cache over one Store. Thread-safe.</summary>
public sealed partial class PageEngine : IDisposable
{
    private readonly DedupFs.Store.Store _store;
    private readonly bool _ownsStore;
    private readonly ContentIndex _index;
    private readonly ConcurrentDictionary<ulong, Mapping> _mappings = new();
    internal readonly KsmCounters Counters = new();

    // Stripe locks for all mappings: 256 groups of 64 (see Mapping.cs), 16384 locks in all.
    internal readonly Lock[] StripeLocks = CreateLocks(256 * Mapping.StripeCount);

    private static Lock[] CreateLocks(int n)
    {
        var locks = new Lock[n];
        for (int i = 0; i < n; i++) locks[i] = new Lock();
        return locks;
    }

    /// <summary>The options in force.</summary>
    public PageEngineOptions Options { get; }

    /// <summary>The page cache.</summary>
    public PageCache Cache { get; }

    /// <summary>The store underneath (metadata blobs, commit, fsck).</summary>
    public DedupFs.Store.Store Store => _store;

    /// <summary>Raised after any mapping broke a share (observers: kernel cache invalidation, tracing).</summary>
    public event BreakShareObserver? SharedPageBroken;

    /// <summary>Opens a store directory and an engine over it; disposing the engine closes the store.</summary>
    public static PageEngine Open(string directory, StoreOptions? storeOptions = null, PageEngineOptions? options = null) =>
        new(DedupFs.Store.Store.Open(directory, storeOptions), options, ownsStore: true);

    /// <summary>Creates an engine over an open store.</summary>
    public PageEngine(DedupFs.Store.Store store, PageEngineOptions? options = null, bool ownsStore = false)
    {
        _store = store;
        _ownsStore = ownsStore;
        Options = options ?? new PageEngineOptions();
        Cache = new PageCache(Options.CacheBytes, Options.PrefaultCache);
        _index = new ContentIndex(id => _store.GetRecord(new PageId(id)).Hash);
        // Rebuild the derived state: the content index and the sharing counters.
        store.ForEachLivePage((id, rec) =>
        {
            _index.Insert(id, rec.Hash);
            Counters.UniquePages++;
            if (rec.RefCount >= 2)
            {
                Counters.PagesShared++;
                Counters.PagesSharing += rec.RefCount - 1;
            }
        });
    }

    /// <summary>A snapshot of the KSM statistics.</summary>
    public KsmStatistics Statistics => Counters.Snapshot();

    internal ContentIndex Index => _index;

    /// <summary>Pages in the content index.</summary>
    public long IndexedPages => _index.Count;

    /// <summary>Memory of the content index in bytes (for the per-unique-page figure).</summary>
    public long IndexMemoryBytes => _index.MemoryBytes;

    /// <summary>The mapping of <paramref name="inode"/> (created empty if it has none). One instance per inode.</summary>
    public Mapping OpenMapping(ulong inode) =>
        _mappings.GetOrAdd(inode, static (ino, self) => self.CreateMapping(ino), this);

    /// <summary>Releases every page of <paramref name="inode"/>'s mapping and forgets it (unlink of the last name).</summary>
    public void DeleteMapping(ulong inode)
    {
        Mapping m = OpenMapping(inode);
        m.Truncate(0);
        _mappings.TryRemove(inode, out _);
        _store.DeleteMapping(inode);
    }

    /// <summary>Drops a mapping nobody uses from memory once its changes are committed (kernel FORGET).
    /// Returns false if it still has uncommitted changes (try again after the next sync).</summary>
    public bool CloseMapping(ulong inode)
    {
        if (!_store.TryUnloadSlotTable(inode)) return false;
        _mappings.TryRemove(inode, out _);
        return true;
    }

    /// <summary>Makes everything done so far durable (fsync, fdatasync, syncfs, unmount).</summary>
    public void Sync() => _store.Commit();

    /// <summary>Every (inode, index) slot that points at <paramref name="page"/>: the list of all copies.</summary>
    public List<(ulong Inode, long Index)> Rmap(PageId page) => _store.ComputeRmap(page);

    /// <summary>Reads page <paramref name="page"/> into <paramref name="dest"/> (4096 bytes): cache, else disk
    /// (checksum verified, then cached). The caller holds a reference to the page.</summary>
    public void ReadPage(PageId page, Span<byte> dest)
    {
        if (Cache.TryRead(page, dest)) return;
        _store.ReadPage(page, dest);
        Cache.Insert(page, dest);
    }

    // Bytes for a compare only (the merge scanner's): cached copy, else an unchecked read (see
    // Store.ReadPageForCompare), so a scan does not churn the cache.
    internal void ReadForCompare(PageId page, Span<byte> dest)
    {
        if (!Cache.TryRead(page, dest)) _store.ReadPageForCompare(page, dest);
    }

    // Whether page's bytes equal data: compared in place in the cache when cached, else against an
    // unchecked read into scratch (see Store.ReadPageForCompare). The caller holds a reference.
    internal bool ContentEquals(PageId page, ReadOnlySpan<byte> data, Span<byte> scratch)
    {
        PageCache.CompareResult cached = Cache.TryCompare(page, data);
        if (cached != PageCache.CompareResult.Miss) return cached == PageCache.CompareResult.Equal;
        _store.ReadPageForCompare(page, scratch);
        return scratch.SequenceEqual(data);
    }

    // Called by every mutating operation that failed: an exception the operation leaves the
    // state consistent for is passed on; anything else stops the store from committing.
    internal void OnOperationFailed(Exception e)
    {
        if (e is BreakShareRefusedException or ArgumentException or PageChecksumException or PageWriteException) return;
        _store.Poison(e);
    }

    internal void RaiseBroken(in BreakShareEvent e) => SharedPageBroken?.Invoke(e);

    internal bool IsShared(PageId page) => !page.IsNone && _store.RefCount(page) > 1;

    internal void AddRef(PageId page) => Counters.OnAddRef(_store.AddRef(page));

    // One reference more on every page of ids (holes skipped), counters summed locally: a GiB
    // clone is 262144 increments, and 2 contended Interlocked adds per page would double it.
    internal void AddRefs(ReadOnlySpan<uint> ids)
    {
        int shared = _store.AddRefs(ids);
        int sharing = ids.Length - ids.Count(0u);
        Interlocked.Add(ref Counters.PagesShared, shared);
        Interlocked.Add(ref Counters.PagesSharing, sharing);
    }

    internal void ReleasePages(ReadOnlySpan<uint> ids)
    {
        foreach (uint id in ids)
            if (id != 0) ReleasePage(new PageId(id));
    }

    /// <summary>Drops one reference; at zero the page leaves the index and the cache.</summary>
    internal void ReleasePage(PageId page)
    {
        ulong hash = _store.GetRecord(page).Hash;
        uint now = _store.Release(page);
        Counters.OnRelease(now);
        if (now == 0)
        {
            _index.Remove(page, hash);
            Cache.Invalidate(page);
        }
    }

    /// <summary>Returns a page holding <paramref name="data"/> with one reference for the caller, or None for zeros.</summary>
    /// <param name="scratch">4096 bytes the method may use for byte compares</param>
    internal PageId InstallPage(ReadOnlySpan<byte> data, ulong hash, bool dedup, Span<byte> scratch)
    {
        if (dedup)
        {
            PageId shared = FindIdentical(data, hash, PageId.None, scratch);
            if (!shared.IsNone)
            {
                Interlocked.Increment(ref Counters.InlineDedupHits);
                return shared;
            }
        }
        PageId id = _store.AllocatePage(data, hash);
        Counters.OnAddRef(1);
        _index.Insert(id, hash);
        Cache.Insert(id, data);
        return id;
    }

    /// <summary>Writes new pages (refcount 1 each), indexes and caches them; see Store.AllocatePages.</summary>
    internal void InstallNewPages(ReadOnlySpan<byte> data, ReadOnlySpan<ulong> hashes, Span<PageId> ids)
    {
        _store.AllocatePages(data, hashes, ids);
        Interlocked.Add(ref Counters.UniquePages, ids.Length);
        for (int k = 0; k < ids.Length; k++)
        {
            _index.Insert(ids[k], hashes[k]);
            Cache.Insert(ids[k], data.Slice(k * PageContent.Size, PageContent.Size));
        }
    }

    /// <summary>The first live candidate for <paramref name="hash"/>, pinned by a reference for the caller
    /// (bytes not compared yet), or None.</summary>
    // The statistics change goes to tally, which the caller adds to the counters once per batch.
    internal PageId PinFirstCandidate(ulong hash, ref RefTally tally)
    {
        Span<uint> candidates = stackalloc uint[8];
        int n = _index.FindCandidates(hash, candidates);
        for (int i = 0; i < n; i++)
        {
            var c = new PageId(candidates[i]);
            uint now = _store.TryAddRef(c);
            if (now == 0) continue;
            tally.Added(now);
            return c;
        }
        return PageId.None;
    }

    /// <summary>Finds an indexed page other than <paramref name="except"/> whose bytes equal <paramref name="data"/>
    /// and returns it with a reference taken for the caller; None if there is none.</summary>
    internal PageId FindIdentical(ReadOnlySpan<byte> data, ulong hash, PageId except, Span<byte> scratch)
    {
        Span<uint> candidates = stackalloc uint[8];
        int n = _index.FindCandidates(hash, candidates);
        for (int i = 0; i < n; i++)
        {
            var c = new PageId(candidates[i]);
            if (c == except) continue;
            uint now = _store.TryAddRef(c);   // pin it: a freed page is no candidate
            if (now == 0) continue;
            Counters.OnAddRef(now);
            // Cached bytes if we have them, else a plain read: no checksum needed to compare (see
            // Store.ReadPageForCompare) and no cache churn from lookups.
            if (ContentEquals(c, data, scratch)) return c;
            ReleasePage(c);
        }
        return PageId.None;
    }

    /// <summary>Closes the engine (and the store if it owns it), committing first.</summary>
    public void Dispose()
    {
        StopScanner();
        if (_ownsStore) _store.Dispose();
        Cache.Dispose();
    }
}
