// The scanner's knobs and counters by their kernel names, for the filesystem to expose as files
// under MNT/.dedupfs/ksm/ (as /sys/kernel/mm/ksm/ does): Get(name) gives the text a read of the
// file returns, Set(name, text) takes what a write gives and answers 0 or an errno:
//   ENOENT  no such name            EACCES  a statistic (read-only, like the kernel's 0444 files)
//   EINVAL  not a number, or out of range (run > 2, max_page_sharing < 2, a boolean not 0/1,
//           advisor_max_cpu outside 1..100, advisor_target_scan_time < 1), pages_to_scan while
//           advisor_mode is scan-time, an advisor_mode other than "none" or "scan-time"
//   EBUSY   max_page_sharing or merge_across_owners changed while a page the scanner merged is
//           still shared (write 2 to run first, as with the kernel's max_page_sharing and
//           merge_across_nodes). The kernel's test is ksm_pages_shared, which counts KSM pages
//           only; ours counts the scanner's stable pages, not pages shared by clones or inline
//           dedup, which run = 2 cannot unshare in mappings that are not mergeable.
// Typed properties do the same, throwing ArgumentOutOfRangeException for EINVAL and
// InvalidOperationException for EBUSY.
using System.Globalization;

namespace DedupFs.Pages;

/// <summary>Per-mapping merge figures [/proc/PID/ksm_stat].</summary>
/// <param name="MergeableSlots">slots the scanner tracks (ksm_rmap_items)</param>
/// <param name="MergedSlots">slots mapping a shared page (ksm_merging_pages)</param>
/// <param name="ZeroPages">slots the scanner made holes because they were zeros (ksm_zero_pages)</param>
/// <param name="Profit">(merged + zero) x 4096 - tracked x 8 bytes (ksm_process_profit)</param>
public readonly record struct MappingMergeStatistics(long MergeableSlots, long MergedSlots, long ZeroPages, long Profit);

/// <summary>A snapshot of the KSM statistics (kernel names; see KSM.md §5).</summary>
public readonly record struct MergeScannerStatistics(
    long PagesShared, long PagesSharing, long PagesUnshared, long PagesVolatile, long PagesScanned, long PagesSkipped,
    long FullScans, long StableNodeChains, long StableNodeDups, long KsmZeroPages, long GeneralProfit, long CowKsm,
    long RmapItems);

public sealed partial class MergeScanner
{
    private const int EINVAL = 22, EBUSY = 16, ENOENT = 2, EACCES = 13;

    private volatile int _run, _pagesToScan = 100, _sleepMs = 20, _maxPageSharing = 256, _pruneMs = 2000;
    private volatile bool _useZeroPages, _smartScan = true, _mergeAcrossOwners = true;

    /// <summary>The writable knobs, by kernel name (merge_across_owners is DedupFs's merge_across_nodes).</summary>
    public static IReadOnlyList<string> TunableNames { get; } =
    [
        "run", "pages_to_scan", "sleep_millisecs", "max_page_sharing", "merge_across_owners", "use_zero_pages",
        "smart_scan", "stable_node_chains_prune_millisecs", "advisor_mode", "advisor_max_cpu", "advisor_min_pages_to_scan",
        "advisor_max_pages_to_scan", "advisor_target_scan_time",
    ];

    /// <summary>The read-only counters, by kernel name.</summary>
    public static IReadOnlyList<string> StatisticNames { get; } =
    [
        "pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "pages_scanned", "pages_skipped", "full_scans",
        "stable_node_chains", "stable_node_dups", "ksm_zero_pages", "general_profit", "cow_ksm",
    ];

    /// <summary>0 stopped (merges stay), 1 running, 2 stopped after unmerging everything.</summary>
    public int Run { get => _run; set => ThrowOnErrno(SetValue("run", value), "run", value); }

    /// <summary>Pages looked at per batch (default 100).</summary>
    public int PagesToScan { get => _pagesToScan; set => ThrowOnErrno(SetValue("pages_to_scan", value), "pages_to_scan", value); }

    /// <summary>Pause between batches (default 20 ms).</summary>
    public int SleepMilliseconds { get => _sleepMs; set => ThrowOnErrno(SetValue("sleep_millisecs", value), "sleep_millisecs", value); }

    /// <summary>Most mappers of one shared page (default 256, at least 2); EBUSY while pages the scanner merged are shared.</summary>
    public int MaxPageSharing { get => _maxPageSharing; set => ThrowOnErrno(SetValue("max_page_sharing", value), "max_page_sharing", value); }

    /// <summary>Whether pages of different merge domains merge (default true); EBUSY while pages the scanner merged are shared.</summary>
    public bool MergeAcrossOwners { get => _mergeAcrossOwners; set => ThrowOnErrno(SetValue("merge_across_owners", value ? 1 : 0), "merge_across_owners", value); }

    /// <summary>Turn all-zero pages into holes (default false); affects later merges only.</summary>
    public bool UseZeroPages { get => _useZeroPages; set => ThrowOnErrno(SetValue("use_zero_pages", value ? 1 : 0), "use_zero_pages", value); }

    /// <summary>Skip pages that keep failing to merge for a growing number of passes (default true).</summary>
    public bool SmartScan { get => _smartScan; set => ThrowOnErrno(SetValue("smart_scan", value ? 1 : 0), "smart_scan", value); }

    /// <summary>How often dead dups leave the stable index (default 2000 ms).</summary>
    public int StableNodeChainsPruneMilliseconds
    {
        get => _pruneMs;
        set => ThrowOnErrno(SetValue("stable_node_chains_prune_millisecs", value), "stable_node_chains_prune_millisecs", value);
    }

    /// <summary>The text a read of <paramref name="name"/> gives (no newline); returns 0 or ENOENT.</summary>
    public int Get(string name, out string value)
    {
        value = "";
        long v;
        switch (name)
        {
            case "run": v = _run; break;
            case "pages_to_scan": v = _pagesToScan; break;
            case "sleep_millisecs": v = _sleepMs; break;
            case "max_page_sharing": v = _maxPageSharing; break;
            case "merge_across_owners": v = _mergeAcrossOwners ? 1 : 0; break;
            case "use_zero_pages": v = _useZeroPages ? 1 : 0; break;
            case "smart_scan": v = _smartScan ? 1 : 0; break;
            case "stable_node_chains_prune_millisecs": v = _pruneMs; break;
            case "advisor_mode": value = AdvisorModeText; return 0;
            case "advisor_max_cpu": v = _advisorMaxCpu; break;
            case "advisor_min_pages_to_scan": v = _advisorMinPages; break;
            case "advisor_max_pages_to_scan": v = _advisorMaxPages; break;
            case "advisor_target_scan_time": v = _advisorTargetSeconds; break;
            default:
                if (!TryGetStatistic(name, out v)) return ENOENT;
                break;
        }
        value = v.ToString(CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Sets <paramref name="name"/> from the text written to its file (surrounding white space ignored);
    /// returns 0, ENOENT, EACCES, EINVAL or EBUSY.</summary>
    public int Set(string name, string value)
    {
        if (!TunableNames.Contains(name)) return StatisticNames.Contains(name) ? EACCES : ENOENT;
        string text = value.Trim();
        if (name == "advisor_mode")
            return text switch { "none" => SetAdvisorMode(ScanAdvisor.None), "scan-time" => SetAdvisorMode(ScanAdvisor.ScanTime), _ => EINVAL };
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out long v))
        {
            // Booleans take the kernel's kstrtobool spellings too.
            if (name is "use_zero_pages" or "smart_scan" or "merge_across_owners" && ParseBool(text) is int b) v = b;
            else return EINVAL;
        }
        return SetValue(name, v);
    }

    private static int? ParseBool(string s) => s.ToLowerInvariant() switch
    {
        "y" or "yes" or "on" or "true" => 1,
        "n" or "no" or "off" or "false" => 0,
        _ => null,
    };

    private int SetValue(string name, long v)
    {
        if (v < 0 || v > int.MaxValue) return EINVAL;
        int n = (int)v;
        switch (name)
        {
            case "run": return SetRun(n);
            case "pages_to_scan":
                if (_advisor != ScanAdvisor.None) return EINVAL;   // the advisor owns it
                _pagesToScan = n;
                return 0;
            case "advisor_max_cpu": if (n < 1 || n > 100) return EINVAL; _advisorMaxCpu = n; return 0;
            case "advisor_min_pages_to_scan": if (n < 1) return EINVAL; _advisorMinPages = n; return 0;
            case "advisor_max_pages_to_scan": if (n < 1) return EINVAL; _advisorMaxPages = n; return 0;
            case "advisor_target_scan_time": if (n < 1) return EINVAL; _advisorTargetSeconds = n; return 0;
            case "sleep_millisecs": _sleepMs = n; Wake(); return 0;
            case "stable_node_chains_prune_millisecs": _pruneMs = n; return 0;
            case "use_zero_pages": if (n > 1) return EINVAL; _useZeroPages = n == 1; return 0;
            case "smart_scan": if (n > 1) return EINVAL; _smartScan = n == 1; return 0;
            case "max_page_sharing":
                if (n < 2) return EINVAL;
                lock (_scanLock)
                {
                    if (n == _maxPageSharing) return 0;
                    if (_stable.AnyLive()) return EBUSY;
                    _maxPageSharing = n;
                    _stable.Clear();
                    return 0;
                }
            case "merge_across_owners":
                if (n > 1) return EINVAL;
                lock (_scanLock)
                {
                    if ((n == 1) == _mergeAcrossOwners) return 0;
                    if (_stable.AnyLive()) return EBUSY;
                    _mergeAcrossOwners = n == 1;
                    ResetState();   // every index key changes
                    return 0;
                }
            default: return ENOENT;
        }
    }

    private int SetRun(int n)
    {
        if (n > 2) return EINVAL;
        if (n == 2)
        {
            _run = 2;   // the thread stops after its batch; we wait for it through _scanLock
            try
            {
                UnmergeAll();
            }
            catch (DedupFs.Store.StoreException e)
            {
                _run = 0;  // the kernel too stops, with the error, when it cannot unmerge everything
                return e.Errno;
            }
            return 0;
        }
        _run = n;
        if (n == 1) StartThread();
        Wake();
        return 0;
    }

    // run = 2: a private copy for every shared slot of every mergeable mapping, then a fresh start.
    private void UnmergeAll()
    {
        lock (_scanLock)
        {
            foreach (ulong inode in _store.MappingInodes())
            {
                Mapping m = _engine.MappingForScan(inode);
                if (m.Mergeable) m.Unmerge();
            }
            ResetState();
        }
    }

    /// <summary>MADV_UNMERGEABLE for one mapping: clears <see cref="Mapping.Mergeable"/>, forgets what the scanner tracked
    /// of it and gives every shared slot a private copy (as run = 2 does for each mergeable mapping). Done between
    /// batches, under the scan lock, so a batch that saw the mapping as mergeable cannot merge into it afterwards;
    /// its pages left in the unstable index are skipped (their table is gone). Returns the slots unmerged.</summary>
    public int MakeUnmergeable(Mapping m)
    {
        lock (_scanLock)
        {
            m.Mergeable = false;
            ForgetTable(m.Inode);
            return m.Unmerge();
        }
    }

    private static void ThrowOnErrno(int errno, string name, object value)
    {
        if (errno == 0) return;
        if (errno == EBUSY) throw new InvalidOperationException($"{name} cannot change while pages are shared (EBUSY); set run = 2 first");
        if (errno == EINVAL) throw new ArgumentOutOfRangeException(name, value, $"invalid {name}");
        throw new DedupFs.Store.StoreException($"setting {name} failed", errno);
    }

    /// <summary>The counter <paramref name="name"/> (a name of <see cref="StatisticNames"/>).</summary>
    public bool TryGetStatistic(string name, out long value)
    {
        MergeScannerStatistics s = Statistics;
        value = name switch
        {
            "pages_shared" => s.PagesShared,
            "pages_sharing" => s.PagesSharing,
            "pages_unshared" => s.PagesUnshared,
            "pages_volatile" => s.PagesVolatile,
            "pages_scanned" => s.PagesScanned,
            "pages_skipped" => s.PagesSkipped,
            "full_scans" => s.FullScans,
            "stable_node_chains" => s.StableNodeChains,
            "stable_node_dups" => s.StableNodeDups,
            "ksm_zero_pages" => s.KsmZeroPages,
            "general_profit" => s.GeneralProfit,
            "cow_ksm" => s.CowKsm,
            _ => long.MinValue,
        };
        return value != long.MinValue;
    }

    /// <summary>The statistics now. pages_shared / pages_sharing / cow_ksm are the engine's (every shared page,
    /// however it came to be shared: merge, clone or inline dedup), updated at once; the scanner's own counts
    /// (pages_unshared, rmap items, ksm_zero_pages) change as it visits slots.</summary>
    public MergeScannerStatistics Statistics
    {
        get
        {
            KsmStatistics es = _engine.Statistics;
            long unshared = _unstable.Count;
            long rmap = Interlocked.Read(ref _rmapItems);
            long zero = Interlocked.Read(ref _ksmZeroPages);
            (long chains, long dups) = _stable.CountChains();
            return new MergeScannerStatistics(
                PagesShared: es.PagesShared,
                PagesSharing: es.PagesSharing,
                PagesUnshared: unshared,
                PagesVolatile: Math.Max(0, rmap - es.PagesShared - es.PagesSharing - unshared),
                PagesScanned: Interlocked.Read(ref _pagesScanned),
                PagesSkipped: Interlocked.Read(ref _pagesSkipped),
                FullScans: Interlocked.Read(ref _fullScans),
                StableNodeChains: chains,
                StableNodeDups: dups,
                KsmZeroPages: zero,
                GeneralProfit: (es.PagesSharing + zero) * PageContent.Size - rmap * ScanTable.BytesPerEntry,
                CowKsm: es.CowKsm,
                RmapItems: rmap);
        }
    }

    /// <summary>The merge figures of one mapping (its slots are walked: for a stats read, not a hot path).</summary>
    public MappingMergeStatistics MappingStatistics(Mapping m)
    {
        long tracked = 0, zero = 0;
        if (_tablesByInode.TryGetValue(m.Inode, out ScanTable? t))
        {
            tracked = Volatile.Read(ref t.Tracked);
            zero = Volatile.Read(ref t.ZeroMerged);
        }
        long merged = 0, count = m.PageCount;
        var ids = new uint[1024];
        for (long first = 0; first < count; first += ids.Length)
        {
            int n = (int)Math.Min(ids.Length, count - first);
            m.PeekSlots(first, ids.AsSpan(0, n));
            for (int k = 0; k < n; k++)
                if (ids[k] != 0 && _store.RefCount(new DedupFs.Store.PageId(ids[k])) >= 2) merged++;
        }
        return new MappingMergeStatistics(tracked, merged, zero, (merged + zero) * PageContent.Size - tracked * ScanTable.BytesPerEntry);
    }

    /// <summary>Memory the scanner uses: scan tables, unstable index and stable index (bytes), and the tracked
    /// slots (entries of the scan tables, zero-page markers included) they serve.</summary>
    public (long ScanTableBytes, long UnstableBytes, long StableBytes, long TrackedSlots) MemoryUse
    {
        get
        {
            lock (_scanLock)
            {
                long bytes = 0, slots = 0;
                foreach (ScanTable t in _tablesByInode.Values)
                {
                    bytes += t.MemoryBytes;
                    slots += t.Tracked + t.ZeroMerged;
                }
                return (bytes, _unstable.MemoryBytes, _stable.MemoryBytes, slots);
            }
        }
    }
}
