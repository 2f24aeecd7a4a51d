// The merge scanner [ksmd, mm/ksm.c]: finds identical pages that are not shared yet and
// merges them, in the background, at the lowest CPU priority.
//
// What it walks. Every mapping the store holds (stored or loaded) whose Mergeable flag is set,
// in inode order, and in each its page slots in index order, `pages_to_scan` pages per batch
// with `sleep_millisecs` between batches. The cursor (position in the pass's inode list, slot
// index) survives between batches, so a batch resumes where the last one stopped. One walk over
// everything is a full scan (full_scans).
//
// Why two indexes. A page is worth merging only if it stays put: merging a page that is about
// to be rewritten wastes a compare and, in the kernel, a copy-on-write fault. KSM cannot afford
// to write-protect every page to find out, so it keeps a checksum per page [rmap_item's
// oldchecksum] and calls a page whose checksum changed since the last visit *volatile*; a page
// is a candidate only after two visits with the same checksum. Candidates go into the
// *unstable index* [unstable tree]: "unstable" because nothing stops its pages from changing
// after they were indexed. A second candidate with the same bytes finds the first there, and
// the pair becomes one shared page, which moves to the *stable index* [stable tree]: pages that
// are shared, and so cannot change (a write to one makes a private copy). Every candidate
// looks in the stable index first, so the third copy of a page joins the shared page instead of
// pairing again. The unstable index is emptied at the start of every full scan: its entries go
// stale as pages change, and a fresh start bounds how stale they get.
//
// DedupFs's twist. Pages here never change bytes at all: a write installs a new page id. So
// the checksum is free (24 bits of the xxHash64 already stored in the page record, no page
// read) and "changed" means "different page id, or a reused id with a different checksum";
// an idle page costs a slot-id read, a 16-byte record read and two table lookups, which is why
// a scan over idle data runs at about a million pages per second: over 1 GiB, 0.74 M pages/s
// for a pass that fills the unstable index and 1.0 M in steady state; over 256 MiB, which
// stays in cache, 1.4-2.7 M and 1.8-5 M (scripts/bench/scanner on a shared 2-core VM; the
// goal was 0.25 M).
//
// Per visited slot, CmpAndMergePage's steps (KSM.md §2):
//   1. the page is already shared (refcount >= 2): it is stable, move on;
//   2. the checksum differs from the last visit's, or this is the first visit: remember it,
//      count the page volatile, stop;
//   3. use_zero_pages and all zeros: the slot becomes a hole (ksm_zero_pages);
//   4. StableTreeSearch: a stable page with these bytes and fewer than max_page_sharing
//      mappers -> merge into it (the scanner's own stable pages first, then pages shared by
//      clones or inline dedup, found through the content index);
//   5. UnstableTreeSearchInsert: a candidate with these bytes -> merge the pair into a new
//      stable page; none -> this slot becomes the candidate (pages_unshared).
// A merge (TryMergeOnePage -> Mapping.TryMergeSlot) freezes the slot with its stripe lock,
// re-checks that the slot still holds the page we looked at, compares all bytes, and only then
// swaps the slot: a racing write either happened before (abort) or waits and then replaces
// whatever the slot holds. No write is ever lost, and merging never changes what a read sees.
//
// max_page_sharing. A shared page takes at most that many mappers; further copies pair up in
// the unstable index into another shared page, a "dup" in the same stable node, which is then
// a chain (stable_node_chains, stable_node_dups). See StableNodes.cs.
//
// smart_scan. A page that stays unmerged is skipped for a growing number of passes
// (age < 3: never; then 1, 2, 4, 8 passes), counted in pages_skipped. Its age restarts when its
// content changes or it merges.
//
// advisor_mode = scan-time. pages_to_scan is then chosen after every full scan to finish a pass
// in advisor_target_scan_time within advisor_max_cpu (MergeScanner.Advisor.cs).
//
// run. 0 stops (merges stay), 1 runs the background thread, 2 stops and gives every shared slot
// of every mergeable mapping a private copy (Mapping.Unmerge), forgetting the scanner's state.
//
// Merge domains. With merge_across_owners = 0, index keys are mixed with the mapping's
// MergeDomain (the owner's uid), so pages merge only within a domain; a merge also checks the
// domains. max_page_sharing and merge_across_owners answer EBUSY while pages the scanner merged
// are shared, as the kernel's max_page_sharing and merge_across_nodes do.
//
// State. The indexes and scan tables are memory only: the merged slots are ordinary mapping
// metadata, durable at the next commit like any write; after a restart the scanner starts
// again with a first pass that finds everything volatile.
//
// Locking. _scanLock serialises batches, manual scans and run = 2. Lock order:
// _scanLock -> Store gate (shared) -> Mapping stripe -> ContentIndex stripe; the stable index's
// lock and _wake are leaves. Statistics readers take no lock but the stable index's.
using DedupFs.Store;

namespace DedupFs.Pages;

/// <summary>The background merge scanner (ksmd) of one engine. Thread-safe.</summary>
public sealed partial class MergeScanner : IDisposable
{
    private readonly PageEngine _engine;
    private readonly DedupFs.Store.Store _store;
    private readonly Lock _scanLock = new();
    private readonly object _wake = new();
    private Thread? _thread;
    private bool _disposed;

    // Scan state, owned by the holder of _scanLock.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, ScanTable> _tablesByInode = new();
    private readonly List<ScanTable?> _tables = [];          // by table number
    private readonly List<int> _freeNumbers = [], _pendingFree = [];
    private readonly UnstableIndex _unstable;
    private readonly StableNodes _stable;
    private List<ulong>? _passInodes;                          // null: no pass under way
    private int _passPos;
    private long _cursorIndex;
    private long _lastPrune = Environment.TickCount64;
    private readonly byte[] _a = new byte[PageContent.Size], _b = new byte[PageContent.Size];

    // Counters (kernel names): written under _scanLock, read by anyone.
    private long _pagesScanned, _pagesSkipped, _fullScans, _rmapItems, _ksmZeroPages;

    private static readonly ulong ZeroHash = PageContent.Hash(new byte[PageContent.Size]);

    internal MergeScanner(PageEngine engine)
    {
        _engine = engine;
        _store = engine.Store;
        _stable = new StableNodes(_store);
        _unstable = new UnstableIndex(KeyOfLocation);
    }

    /// <summary>Whether the background thread got SCHED_IDLE (false: it runs at ThreadPriority.Lowest).</summary>
    public bool SchedIdle { get; private set; }

    /// <summary>The last exception a background batch threw (it retries after a second), or null.</summary>
    public Exception? LastError { get; private set; }

    /// <summary>Scans one batch of <c>pages_to_scan</c> pages now, on the calling thread (what the background
    /// thread does each time it wakes). Stops early at the end of a full scan. Works whatever <c>run</c> is.</summary>
    public void ScanBatch() => ScanPages(PagesToScan);

    /// <summary>Scans until the full scan under way (or a new one) completes, on the calling thread.</summary>
    public void RunFullScan()
    {
        while (!ScanPages(long.MaxValue)) { }
    }

    // Visits up to `budget` pages (holes and smart-scan skips do not count, but are bounded).
    // Returns true when a full scan ended; a batch never crosses the end of a pass, so a store
    // with nothing to scan cannot keep a batch spinning from one empty pass to the next.
    private bool ScanPages(long budget)
    {
        lock (_scanLock)
        {
            _batchCpuStart = ThreadCpuNanoseconds();
            try
            {
                return ScanPagesLocked(budget);
            }
            finally
            {
                AccountBatchCpu();
            }
        }
    }

    private bool ScanPagesLocked(long budget)
    {
        Span<uint> ids = stackalloc uint[64];
        MaybePrune();
        // Holes, skipped pages and mappings with nothing to scan cost a visit each, so a batch over
        // a sparse file or a million empty ones still ends after budget x 64 of them.
        long visits = 0, cap = budget > long.MaxValue / 64 ? long.MaxValue : Math.Max(budget, 1) * 64;
        while (budget > 0 && visits < cap)
        {
            if (_passInodes == null) StartPass();
            if (_passPos >= _passInodes!.Count)
            {
                EndPass();
                return true;
            }
            ulong inode = _passInodes[_passPos];
            Mapping m = _engine.MappingForScan(inode);
            if (!m.Mergeable)
            {
                ForgetTable(inode);
                NextMapping();
                visits++;
                continue;
            }
            ScanTable table = TableFor(inode);
            table.Domain = m.MergeDomain;
            // Walk past the last used slot too while the table remembers slots there (a truncation).
            long pageCount = m.PageCount;
            long end = Math.Max(pageCount, table.Extent);
            if (_cursorIndex >= end)
            {
                if (table.Extent > pageCount) table.TrimExtent();
                NextMapping();
                visits++;
                continue;
            }
            int n = (int)Math.Min(ids.Length, end - _cursorIndex);
            m.PeekSlots(_cursorIndex, ids[..n]);
            int k = 0;
            for (; k < n && budget > 0; k++)
            {
                visits++;
                budget -= ScanSlot(m, table, _cursorIndex + k, ids[k]);
            }
            _cursorIndex += k;
        }
        return false;
    }

    private void StartPass()
    {
        AdvisorPassStarted();
        _passInodes = _store.MappingInodes();
        _passPos = 0;
        _cursorIndex = 0;
        _unstable.Clear();
        // Tables of mappings that are gone; their numbers are free now that no index entry names them.
        var live = new HashSet<ulong>(_passInodes);
        foreach (ulong inode in _tablesByInode.Keys)
            if (!live.Contains(inode)) ForgetTable(inode);
        _freeNumbers.AddRange(_pendingFree);
        _pendingFree.Clear();
    }

    private void EndPass()
    {
        Interlocked.Increment(ref _fullScans);
        _passInodes = null;
        AccountBatchCpu();
        AdvisorPassEnded();
    }

    private void NextMapping()
    {
        _passPos++;
        _cursorIndex = 0;
    }

    private ScanTable TableFor(ulong inode)
    {
        if (_tablesByInode.TryGetValue(inode, out ScanTable? t)) return t;
        int number;
        if (_freeNumbers.Count > 0)
        {
            number = _freeNumbers[^1];
            _freeNumbers.RemoveAt(_freeNumbers.Count - 1);
        }
        else
        {
            number = _tables.Count;
            _tables.Add(null);
        }
        t = new ScanTable(inode, number);
        _tables[number] = t;
        _tablesByInode[inode] = t;
        return t;
    }

    private void ForgetTable(ulong inode)
    {
        if (!_tablesByInode.TryRemove(inode, out ScanTable? t)) return;
        Interlocked.Add(ref _rmapItems, -t.Tracked);
        Interlocked.Add(ref _ksmZeroPages, -t.ZeroMerged);
        _tables[t.Number] = null;
        _pendingFree.Add(t.Number);
    }

    private void MaybePrune()
    {
        long now = Environment.TickCount64;
        if (now - _lastPrune < StableNodeChainsPruneMilliseconds) return;
        _lastPrune = now;
        _stable.Prune();
    }

    /// <summary>Drops dead dups from the stable index now (the background thread does it every
    /// stable_node_chains_prune_millisecs); returns how many went.</summary>
    public int PruneStableNodes()
    {
        lock (_scanLock) return _stable.Prune();
    }

    // Forgets everything the scanner learnt (run = 2, a change of merge_across_owners).
    private void ResetState()
    {
        _stable.Clear();
        _unstable.Clear();
        foreach (ulong inode in _tablesByInode.Keys) ForgetTable(inode);
        _passInodes = null;
        _passPos = 0;
        _cursorIndex = 0;
    }

    private void StartThread()
    {
        lock (_wake)
        {
            if (_thread != null || _disposed) return;
            _thread = new Thread(ThreadMain) { IsBackground = true, Name = "dedupfs-ksmd", Priority = ThreadPriority.Lowest };
            _thread.Start();
        }
    }

    private void ThreadMain()
    {
        SchedIdle = Interop.SchedIdle.TryApplyToCurrentThread();
        while (true)
        {
            lock (_wake)
            {
                while (!_disposed && _run != 1) Monitor.Wait(_wake);
                if (_disposed) return;
            }
            int sleep = SleepMilliseconds;
            try
            {
                ScanPages(PagesToScan);
            }
            catch (Exception e)
            {
                LastError = e;   // e.g. EROFS once the store is poisoned: try again later, slowly
                sleep = Math.Max(sleep, 1000);
            }
            lock (_wake)
            {
                if (_disposed) return;
                if (_run == 1 && sleep > 0) Monitor.Wait(_wake, sleep);
            }
        }
    }

    private void Wake()
    {
        lock (_wake) Monitor.PulseAll(_wake);
    }

    /// <summary>Stops the background thread (merges stay).</summary>
    public void Dispose()
    {
        Thread? t;
        lock (_wake)
        {
            _disposed = true;
            Monitor.PulseAll(_wake);
            t = _thread;
        }
        t?.Join();
    }
}
