// The merge scanner's KSM semantics (KSM.md §6), driven pass by pass through RunFullScan so
// every figure is deterministic.
using DedupFs.Store;
using static DedupFs.Pages.Tests.ScannerTestKit;

namespace DedupFs.Pages.Tests;

public class MergeScannerTests
{
    [Fact]
    public void Identical_idle_mappings_merge_on_the_second_pass()
    {
        using TestEngine t = NewEngine();
        const int N = 5, Pages = 3;
        byte[] content = ScannerTestKit.Pages(100, Pages);
        for (ulong i = 1; i <= N; i++) t.Engine.OpenMapping(i).Write(0, content);
        MergeScanner s = t.Engine.Scanner;
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(0, st.PagesShared);

        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(1, st.FullScans);
        Assert.Equal(0, st.PagesShared);
        Assert.Equal(N * Pages, st.PagesVolatile);
        Assert.Equal(N * Pages, st.PagesScanned);

        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(Pages, st.PagesShared);
        Assert.Equal(Pages * (N - 1), st.PagesSharing);
        Assert.Equal(0, st.PagesUnshared);
        Assert.Equal(0, st.PagesVolatile);
        Assert.Equal(0, st.StableNodeChains);
        for (ulong i = 1; i <= N; i++) Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(i)));
        Assert.Equal(t.Engine.OpenMapping(1).PageAt(2), t.Engine.OpenMapping(N).PageAt(2));

        MappingMergeStatistics ms = s.MappingStatistics(t.Engine.OpenMapping(2));
        Assert.Equal(new MappingMergeStatistics(Pages, Pages, 0, Pages * P - Pages * 8), ms);

        // Further passes change nothing, and the merge survives a restart (it is mapping metadata).
        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(Pages * (N - 1), st.PagesSharing);
        t.Reopen();
        Assert.Equal(Pages, t.Engine.Statistics.PagesShared);
        Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(3)));
    }

    [Fact]
    public void MakeUnmergeable_unmerges_one_mapping_and_keeps_it_out_of_later_passes()
    {
        using TestEngine t = NewEngine();
        const int N = 4, Pages = 3;
        byte[] content = ScannerTestKit.Pages(300, Pages);
        for (ulong i = 1; i <= N; i++) t.Engine.OpenMapping(i).Write(0, content);
        MergeScanner s = t.Engine.Scanner;
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(Pages * (N - 1), st.PagesSharing);

        Mapping m = t.Engine.OpenMapping(N);
        Assert.Equal(Pages, s.MakeUnmergeable(m));
        Assert.False(m.Mergeable);
        st = AssertFormulas(t, st);
        Assert.Equal(Pages * (N - 2), st.PagesSharing);
        Assert.Equal(new MappingMergeStatistics(0, 0, 0, 0), s.MappingStatistics(m));

        for (int pass = 0; pass < 3; pass++)
        {
            s.RunFullScan();
            st = AssertFormulas(t, st);
            Assert.Equal(Pages * (N - 2), st.PagesSharing);
        }
        for (ulong i = 1; i <= N; i++) Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(i)));
    }

    [Fact]
    public void A_page_rewritten_between_visits_never_merges()
    {
        using TestEngine t = NewEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        byte[] x = Pattern(7), y = Pattern(8);
        a.Write(0, x);
        b.Write(0, x);
        MergeScanner s = t.Engine.Scanner;
        MergeScannerStatistics st = AssertFormulas(t);
        for (int pass = 0; pass < 8; pass++)
        {
            a.Write(0, y);   // a new page id each time: volatile on every visit
            a.Write(0, x);
            s.RunFullScan();
            st = AssertFormulas(t, st);
            Assert.Equal(0, st.PagesShared);
            Assert.NotEqual(a.PageAt(0), b.PageAt(0));
            Assert.Equal(x, TestEngine.ReadAll(a));
        }
        // Once it holds still it merges: one pass to be seen unchanged, one more if b sits out a smart-scan skip.
        for (int pass = 0; pass < 12 && st.PagesShared == 0; pass++)
        {
            s.RunFullScan();
            st = AssertFormulas(t, st);
        }
        Assert.Equal(1, st.PagesShared);
        Assert.Equal(a.PageAt(0), b.PageAt(0));
    }

    [Fact]
    public void Max_page_sharing_starts_a_chain_of_dups()
    {
        using TestEngine t = NewEngine();
        const int M = 3, N = 2 * M + 1;
        MergeScanner s = t.Engine.Scanner;
        Assert.Equal(0, s.Set("max_page_sharing", M.ToString()));
        byte[] page = Pattern(42);
        for (ulong i = 1; i <= N; i++) t.Engine.OpenMapping(i).Write(0, page);
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(2, st.PagesShared);
        Assert.Equal(2 * (M - 1), st.PagesSharing);
        Assert.Equal(1, st.PagesUnshared);
        Assert.Equal(1, st.StableNodeChains);
        Assert.Equal(2, st.StableNodeDups);
        Assert.True(st.PagesSharing <= st.PagesShared * (M - 1));
        for (ulong i = 1; i <= N; i++) Assert.Equal(page, TestEngine.ReadAll(t.Engine.OpenMapping(i)));

        // Writes empty the second dup: the chain collapses and the pruner forgets the dead dup.
        var distinct = new HashSet<PageId>();
        for (ulong i = 1; i <= N; i++) distinct.Add(t.Engine.OpenMapping(i).PageAt(0));
        PageId second = t.Engine.OpenMapping(N - 1).PageAt(0);
        for (ulong i = 1; i <= N; i++)
            if (t.Engine.OpenMapping(i).PageAt(0) == second) t.Engine.OpenMapping(i).Write(0, Pattern(1000 + (int)i));
        st = AssertFormulas(t, st);
        Assert.Equal(0, st.StableNodeChains);
        Assert.Equal(1, s.PruneStableNodes());
    }

    [Fact]
    public void Zero_pages_become_holes_with_use_zero_pages()
    {
        using TestEngine t = NewEngine();
        const int N = 4;
        MergeScanner s = t.Engine.Scanner;
        s.UseZeroPages = true;
        for (ulong i = 1; i <= N; i++)
        {
            Mapping m = t.Engine.OpenMapping(i);
            m.StorePageVerbatim(0, new byte[P]);        // zeros stored as a page (inline dedup off, old store...)
            m.StorePageVerbatim(1, Pattern((int)i));    // distinct
        }
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t, verify: false);
        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(N, st.KsmZeroPages);
        Assert.Equal(0, st.PagesShared);
        for (ulong i = 1; i <= N; i++)
        {
            Mapping m = t.Engine.OpenMapping(i);
            Assert.Equal(PageId.None, m.PageAt(0));
            byte[] all = TestEngine.ReadAll(m);
            Assert.True(all.AsSpan(0, P).IndexOfAnyExcept((byte)0) < 0);
            Assert.Equal(Pattern((int)i), all[P..]);
        }
        Assert.Equal(1, s.MappingStatistics(t.Engine.OpenMapping(1)).ZeroPages);

        // A write over a zero-merged slot, or a truncation past it, ends that zero-page mapping
        // (seen at the next visit); deleting the file does too (seen at the next pass).
        t.Engine.OpenMapping(2).Write(0, Pattern(77));
        t.Engine.OpenMapping(3).Truncate(0);
        t.Engine.DeleteMapping(4);
        s.RunFullScan();
        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(N - 3, st.KsmZeroPages);
        Assert.Equal(1, s.MappingStatistics(t.Engine.OpenMapping(1)).ZeroPages);
    }

    [Fact]
    public void Without_use_zero_pages_zero_pages_merge_like_any_other()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        for (ulong i = 1; i <= 3; i++) t.Engine.OpenMapping(i).StorePageVerbatim(0, new byte[P]);
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t, verify: false);
        Assert.Equal(0, st.KsmZeroPages);
        Assert.Equal(1, st.PagesShared);
        Assert.Equal(2, st.PagesSharing);
    }

    [Fact]
    public void Run_2_unmerges_everything_and_keeps_contents()
    {
        using TestEngine t = NewEngine();
        const int N = 4;
        byte[] content = ScannerTestKit.Pages(500, 4);
        for (ulong i = 1; i <= N; i++) t.Engine.OpenMapping(i).Write(0, content);
        t.Engine.CloneMapping(t.Engine.OpenMapping(1), t.Engine.OpenMapping(9));   // clone-shared slots unmerge too
        MergeScanner s = t.Engine.Scanner;
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.True(st.PagesShared > 0);

        Assert.Equal(0, s.Set("run", "2"));
        Assert.Equal(2, s.Run);
        st = AssertFormulas(t, st);
        Assert.Equal(0, st.PagesShared);
        Assert.Equal(0, st.PagesSharing);
        Assert.Equal(0, st.RmapItems);
        foreach (ulong i in new ulong[] { 1, 2, 3, 4, 9 }) Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(i)));
        var ids = new HashSet<PageId>();
        foreach (ulong i in new ulong[] { 1, 2, 3, 4, 9 })
            for (int p = 0; p < 4; p++) Assert.True(ids.Add(t.Engine.OpenMapping(i).PageAt(p)));
    }

    [Fact]
    public void Tunables_answer_EINVAL_and_EBUSY_like_the_kernel()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        Assert.Equal(22, s.Set("run", "3"));
        Assert.Equal(22, s.Set("run", "-1"));
        Assert.Equal(22, s.Set("pages_to_scan", "many"));
        Assert.Equal(22, s.Set("max_page_sharing", "1"));
        Assert.Equal(22, s.Set("use_zero_pages", "2"));
        Assert.Equal(13, s.Set("pages_shared", "0"));
        Assert.Equal(2, s.Set("no_such_knob", "0"));
        Assert.Equal(2, s.Get("no_such_knob", out _));
        Assert.Equal(0, s.Set("pages_to_scan", "500\n"));
        Assert.Equal(500, s.PagesToScan);
        Assert.Equal(0, s.Set("smart_scan", "n"));
        Assert.False(s.SmartScan);
        Assert.Equal(0, s.Set("max_page_sharing", "16"));   // nothing shared yet

        byte[] page = Pattern(3);
        t.Engine.OpenMapping(1).Write(0, page);
        t.Engine.OpenMapping(2).Write(0, page);
        s.RunFullScan();
        s.RunFullScan();
        Assert.Equal(1, s.Statistics.PagesShared);
        Assert.Equal(16, s.Set("max_page_sharing", "32"));
        Assert.Equal(0, s.Set("max_page_sharing", "16"));    // unchanged: fine
        Assert.Equal(16, s.Set("merge_across_owners", "0"));
        Assert.Throws<InvalidOperationException>(() => s.MaxPageSharing = 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Run = 5);
        Assert.Equal(0, s.Set("run", "2"));
        Assert.Equal(0, s.Set("max_page_sharing", "32"));
        Assert.Equal(0, s.Set("merge_across_owners", "0"));
        Assert.Equal(0, s.Get("max_page_sharing", out string v));
        Assert.Equal("32", v);
        // Pages shared by a clone alone are not the scanner's: they do not pin the knobs.
        t.Engine.CloneMapping(t.Engine.OpenMapping(1), t.Engine.OpenMapping(5));
        Assert.True(s.Statistics.PagesShared > 0);
        Assert.Equal(0, s.Set("max_page_sharing", "64"));
        foreach (string name in MergeScanner.TunableNames)
        {
            Assert.Equal(0, s.Get(name, out string text));
            if (name == "advisor_mode") Assert.Equal("[none] scan-time", text);
            else Assert.Equal(0, s.Set(name, text));
        }
    }

    [Fact]
    public void Merge_domains_keep_owners_apart_when_asked()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        s.MergeAcrossOwners = false;
        byte[] page = Pattern(11);
        for (ulong i = 1; i <= 4; i++)
        {
            Mapping m = t.Engine.OpenMapping(i);
            m.MergeDomain = i <= 2 ? 1000u : 2000u;
            m.Write(0, page);
        }
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(2, st.PagesShared);
        Assert.Equal(2, st.PagesSharing);
        Assert.Equal(t.Engine.OpenMapping(1).PageAt(0), t.Engine.OpenMapping(2).PageAt(0));
        Assert.Equal(t.Engine.OpenMapping(3).PageAt(0), t.Engine.OpenMapping(4).PageAt(0));
        Assert.NotEqual(t.Engine.OpenMapping(1).PageAt(0), t.Engine.OpenMapping(3).PageAt(0));

        // Across owners (after unmerging, as the EBUSY rule wants): one shared page for all four.
        s.Run = 2;
        s.MergeAcrossOwners = true;
        s.RunFullScan();
        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(1, st.PagesShared);
        Assert.Equal(3, st.PagesSharing);
    }

    [Fact]
    public void Only_mergeable_mappings_merge()
    {
        using TestEngine t = NewEngine(mergeableByDefault: false);
        MergeScanner s = t.Engine.Scanner;
        byte[] page = Pattern(5);
        for (ulong i = 1; i <= 3; i++) t.Engine.OpenMapping(i).Write(0, page);
        s.RunFullScan();
        s.RunFullScan();
        Assert.Equal(0, AssertFormulas(t).PagesShared);
        Assert.Equal(0, s.Statistics.PagesScanned);

        t.Engine.OpenMapping(1).Mergeable = true;
        t.Engine.OpenMapping(3).Mergeable = true;
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(1, st.PagesShared);
        Assert.Equal(1, st.PagesSharing);
        Assert.Equal(t.Engine.OpenMapping(1).PageAt(0), t.Engine.OpenMapping(3).PageAt(0));
        Assert.NotEqual(t.Engine.OpenMapping(1).PageAt(0), t.Engine.OpenMapping(2).PageAt(0));

        // Clearing the flag stops tracking but does not unmerge.
        t.Engine.OpenMapping(3).Mergeable = false;
        s.RunFullScan();
        st = AssertFormulas(t, st);
        Assert.Equal(1, st.PagesShared);
        Assert.Equal(1, st.RmapItems);
    }

    [Fact]
    public void Smart_scan_skips_pages_that_keep_failing_to_merge()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        t.Engine.OpenMapping(1).Write(0, ScannerTestKit.Pages(1, 8));
        MergeScannerStatistics st = AssertFormulas(t);
        for (int pass = 0; pass < 10; pass++)
        {
            s.RunFullScan();
            st = AssertFormulas(t, st);
        }
        Assert.True(st.PagesSkipped > 0);
        Assert.True(st.PagesScanned < 10 * 8);
        Assert.Equal(10 * 8, st.PagesScanned + st.PagesSkipped);

        s.SmartScan = false;
        long before = st.PagesSkipped;
        s.RunFullScan();
        Assert.Equal(before, s.Statistics.PagesSkipped);
    }

    [Fact]
    public void Batches_resume_where_the_last_one_stopped()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        s.PagesToScan = 7;
        byte[] content = ScannerTestKit.Pages(300, 20);
        t.Engine.OpenMapping(1).Write(0, content);
        t.Engine.OpenMapping(2).Write(0, content);
        int batches = 0;
        while (s.Statistics.FullScans < 2) { s.ScanBatch(); batches++; AssertFormulas(t, verify: false); }
        Assert.Equal(80, s.Statistics.PagesScanned);
        Assert.InRange(batches, 12, 14);   // 40 pages a pass, 7 at a time, a batch ends at a pass end
        Assert.Equal(20, s.Statistics.PagesShared);
    }

    [Fact]
    public async Task The_background_thread_merges_and_stops()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        byte[] content = ScannerTestKit.Pages(900, 16);
        for (ulong i = 1; i <= 3; i++) t.Engine.OpenMapping(i).Write(0, content);
        s.PagesToScan = 10;
        s.SleepMilliseconds = 1;
        Assert.Equal(0, s.Set("run", "1"));
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (s.Statistics.PagesSharing < 32 && DateTime.UtcNow < deadline) await Task.Delay(10);
        s.Run = 0;
        Assert.Equal(16, s.Statistics.PagesShared);
        Assert.Equal(32, s.Statistics.PagesSharing);
        Assert.Null(s.LastError);
        // A batch in flight when run went to 0 finishes; ours takes the scan lock after it.
        s.PagesToScan = 0;
        s.ScanBatch();
        long scanned = s.Statistics.PagesScanned;
        await Task.Delay(100);
        Assert.Equal(scanned, s.Statistics.PagesScanned);
        AssertFormulas(t);

        // run = 2 while the thread runs: it waits for the batch in flight, then everything is private.
        s.Run = 1;
        await Task.Delay(20);
        Assert.Equal(0, s.Set("run", "2"));
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(0, st.PagesShared);
        for (ulong i = 1; i <= 3; i++) Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(i)));
        await Task.Delay(50);
        Assert.Equal(0, s.Statistics.PagesShared);   // and it stays stopped
    }
}

public class MergeScannerConfigurationTests
{
    [Fact]
    public void ConfigureMapping_decides_for_mappings_the_scanner_opens_itself()
    {
        var options = new PageEngineOptions
        {
            CacheBytes = 1 << 20,
            InlineDedup = false,
            ConfigureMapping = m => m.Mergeable = m.Inode != 2,   // as if inode 2 had user.dedupfs.merge=0
        };
        using var t = new TestEngine(options);
        byte[] page = Pattern(21);
        for (ulong i = 1; i <= 3; i++) t.Engine.OpenMapping(i).Write(0, page);
        t.Reopen();   // nothing loaded: the scanner opens every mapping
        MergeScanner s = t.Engine.Scanner;
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(1, st.PagesShared);
        Assert.Equal(1, st.PagesSharing);
        Assert.False(t.Engine.OpenMapping(2).Mergeable);
        Assert.NotEqual(t.Engine.OpenMapping(1).PageAt(0), t.Engine.OpenMapping(2).PageAt(0));
    }

    [Fact]
    public void Pages_shared_by_a_clone_are_merge_targets()
    {
        using TestEngine t = NewEngine();
        byte[] content = ScannerTestKit.Pages(60, 4);
        t.Engine.OpenMapping(1).Write(0, content);
        t.Engine.CloneMapping(t.Engine.OpenMapping(1), t.Engine.OpenMapping(2));
        t.Engine.OpenMapping(3).Write(0, content);   // a private copy
        MergeScanner s = t.Engine.Scanner;
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(4, st.PagesShared);
        Assert.Equal(8, st.PagesSharing);
        Assert.Equal(0, st.PagesUnshared);
        for (int p = 0; p < 4; p++) Assert.Equal(t.Engine.OpenMapping(1).PageAt(p), t.Engine.OpenMapping(3).PageAt(p));
    }
}

public class MergeScannerEdgeTests
{
    [Fact]
    public void A_long_chain_of_full_dups_fills_one_dup_after_the_other()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        s.MaxPageSharing = 2;
        const int N = 9;
        byte[] page = Pattern(88);
        for (ulong i = 1; i <= N; i++) t.Engine.OpenMapping(i).Write(0, page);
        s.RunFullScan();
        s.RunFullScan();
        MergeScannerStatistics st = AssertFormulas(t);
        Assert.Equal(4, st.PagesShared);
        Assert.Equal(4, st.PagesSharing);
        Assert.Equal(1, st.PagesUnshared);
        Assert.Equal(1, st.StableNodeChains);
        Assert.Equal(4, st.StableNodeDups);
    }

    [Fact]
    public async Task An_empty_store_does_not_keep_the_thread_busy()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        s.SleepMilliseconds = 20;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        s.Run = 1;
        await Task.Delay(300);
        s.Run = 0;
        long elapsedMs = clock.ElapsedMilliseconds;
        // One empty pass per batch, a 20 ms sleep after each: elapsed / 20, never thousands.
        // 0 is possible: SCHED_IDLE on a busy machine.
        Assert.InRange(s.Statistics.FullScans, 0, elapsedMs / 20 + 5);
        Assert.Null(s.LastError);
    }
}

public class MergeScannerDurabilityTests
{
    [Fact]
    public void Merges_are_durable_at_sync_and_a_crash_before_it_loses_only_the_merges()
    {
        using TestEngine t = NewEngine();
        byte[] content = ScannerTestKit.Pages(700, 6);
        for (ulong i = 1; i <= 3; i++) t.Engine.OpenMapping(i).Write(0, content);
        t.Engine.Sync();
        MergeScanner s = t.Engine.Scanner;
        s.RunFullScan();
        s.RunFullScan();
        Assert.Equal(6, s.Statistics.PagesShared);

        t.CrashAndReopen();   // merges not committed: the state of the last sync, consistent
        Assert.Empty(t.Engine.Verify());
        Assert.Equal(0, t.Engine.Statistics.PagesShared);
        for (ulong i = 1; i <= 3; i++) Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(i)));

        s = t.Engine.Scanner;   // scanner state is rebuilt from nothing
        s.RunFullScan();
        s.RunFullScan();
        Assert.Equal(12, s.Statistics.PagesSharing);
        t.Engine.Sync();
        t.CrashAndReopen();
        Assert.Empty(t.Engine.Verify());
        Assert.Equal(6, t.Engine.Statistics.PagesShared);
        Assert.Equal(12, t.Engine.Statistics.PagesSharing);
        for (ulong i = 1; i <= 3; i++) Assert.Equal(content, TestEngine.ReadAll(t.Engine.OpenMapping(i)));
    }
}

public class MergeScannerMappingLifetimeTests
{
    [Fact]
    public void A_closed_or_deleted_mapping_object_is_never_merged_into()
    {
        using TestEngine t = NewEngine();
        byte[] page = Pattern(31);
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        a.Write(0, page);
        b.Write(0, page);
        t.Engine.Sync();
        PageId pa = a.PageAt(0), pb = b.PageAt(0);
        var x = new byte[P];
        var y = new byte[P];

        Assert.True(t.Engine.CloseMapping(1));   // FORGET: `a` is stale now
        t.Engine.AddRef(pb);   // the pin a merge holds on its target
        Assert.Equal(SlotMergeResult.SlotChanged, a.TryMergeSlot(0, pa, pb, x, y));
        t.Engine.ReleasePage(pb);
        Assert.Equal(SlotMergeResult.SlotChanged, a.TryZeroSlot(0, pa, x));

        t.Engine.DeleteMapping(2);
        Assert.Equal(SlotMergeResult.SlotChanged, b.TryZeroSlot(0, pb, x));
        Assert.Empty(t.Engine.Verify());

        // The scanner itself reopens what it needs and merges the live objects.
        t.Engine.OpenMapping(3).Write(0, page);
        MergeScanner s = t.Engine.Scanner;
        s.RunFullScan();
        s.RunFullScan();
        Assert.Equal(1, s.Statistics.PagesShared);
        Assert.Equal(t.Engine.OpenMapping(1).PageAt(0), t.Engine.OpenMapping(3).PageAt(0));
        AssertFormulas(t);
    }
}

public class MergeScannerAdvisorTests
{
    [Fact]
    public void Advisor_mode_owns_pages_to_scan()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        Assert.Equal(0, s.Set("advisor_mode", "scan-time\n"));
        Assert.Equal(500, s.PagesToScan);                       // advisor_min_pages_to_scan
        Assert.Equal(0, s.Get("advisor_mode", out string text));
        Assert.Equal("none [scan-time]", text);
        Assert.Equal(22, s.Set("pages_to_scan", "100"));
        Assert.Equal(22, s.Set("advisor_mode", "sometimes"));
        Assert.Equal(22, s.Set("advisor_max_cpu", "101"));
        Assert.Equal(22, s.Set("advisor_target_scan_time", "0"));
        Assert.Equal(0, s.Set("advisor_mode", "none"));
        Assert.Equal(100, s.PagesToScan);
        Assert.Equal(0, s.Set("pages_to_scan", "100"));
    }

    [Fact]
    public void Advisor_scales_toward_the_target_within_the_cpu_bounds()
    {
        long last = 0, change = 100;
        // 400 s against a 200 s target at 1% CPU: more pages per batch.
        int pages = MergeScanner.Advise(500, 400, 4_000_000_000, ref last, ref change, 200, 70, 30000);
        Assert.True(pages > 500, $"{pages}");
        Assert.Equal(400, last);
        // 50 s against 200 s at 50% CPU: a quarter of the pages.
        last = 0; change = 100;
        pages = MergeScanner.Advise(5000, 50, 25_000_000_000, ref last, ref change, 200, 70, 30000);
        Assert.Equal(1250, pages);
        // The same at 10% CPU: never below the floor of 10% of a core (pages per percent x 10).
        last = 0; change = 100;
        pages = MergeScanner.Advise(5000, 50, 5_000_000_000, ref last, ref change, 200, 70, 30000);
        Assert.Equal(5000, pages);
        // Slow scan but at 100% CPU: capped at max_cpu (70) x cost (pages per percent).
        last = 0; change = 100;
        pages = MergeScanner.Advise(1000, 400, 400_000_000_000, ref last, ref change, 200, 70, 30000);
        Assert.Equal(1000 / 100 * 70, pages);
        // And never above advisor_max_pages_to_scan.
        last = 0; change = 100;
        pages = MergeScanner.Advise(20000, 4000, 1_000_000_000, ref last, ref change, 200, 70, 30000);
        Assert.Equal(30000, pages);
    }

    [Fact]
    public void Advisor_runs_after_each_full_scan()
    {
        using TestEngine t = NewEngine();
        MergeScanner s = t.Engine.Scanner;
        t.Engine.OpenMapping(1).Write(0, ScannerTestKit.Pages(1, 4));
        long ms = 0, cpu = 0;
        s.NowMilliseconds = () => ms += 300_000;        // every reading 300 s later: a slow pass
        s.ThreadCpuNanoseconds = () => cpu += 1_000_000; // and almost no CPU
        s.AdvisorMode = ScanAdvisor.ScanTime;
        s.RunFullScan();
        int first = s.PagesToScan;
        Assert.True(first > 500, $"{first}");
        s.RunFullScan();
        Assert.True(s.PagesToScan >= first);
        AssertFormulas(t);
    }
}
