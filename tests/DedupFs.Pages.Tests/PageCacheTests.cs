using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class PageCacheTests
{
    private static byte[] Page(uint id)
    {
        var b = new byte[PageContent.Size];
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(b.AsSpan()).Fill(id);
        return b;
    }

    [Fact]
    public void Budget_is_respected_and_clock_keeps_referenced_pages()
    {
        using var cache = new PageCache(8 * PageContent.Size);
        for (uint i = 1; i <= 8; i++) cache.Insert(new PageId(i), Page(i));
        Assert.Equal(8, cache.Count);
        var buf = new byte[PageContent.Size];
        Assert.True(cache.TryRead(new PageId(1), buf));  // page 1 gets its second chance
        cache.Insert(new PageId(9), Page(9));
        Assert.Equal(8, cache.Count);
        Assert.True(cache.Contains(new PageId(1)));
        Assert.False(cache.Contains(new PageId(2)));       // the first unreferenced frame went
        Assert.True(cache.TryRead(new PageId(9), buf));
        Assert.Equal(Page(9), buf);
        cache.Invalidate(new PageId(9));
        Assert.False(cache.TryRead(new PageId(9), buf));
    }

    [Fact]
    public void Compare_in_place_tells_equal_different_and_miss()
    {
        using var cache = new PageCache(4 * PageContent.Size);
        cache.Insert(new PageId(1), Page(1));
        Assert.Equal(PageCache.CompareResult.Equal, cache.TryCompare(new PageId(1), Page(1)));
        byte[] last = Page(1);
        last[^1] ^= 1;   // differs in the very last byte only
        Assert.Equal(PageCache.CompareResult.Different, cache.TryCompare(new PageId(1), last));
        Assert.Equal(PageCache.CompareResult.Miss, cache.TryCompare(new PageId(2), Page(2)));
        cache.Invalidate(new PageId(1));
        Assert.Equal(PageCache.CompareResult.Miss, cache.TryCompare(new PageId(1), Page(1)));
        using var none = new PageCache(0);
        Assert.Equal(PageCache.CompareResult.Miss, none.TryCompare(new PageId(1), Page(1)));
    }

    [Fact]
    public void Zero_budget_disables_the_cache()
    {
        using var cache = new PageCache(0);
        cache.Insert(new PageId(1), Page(1));
        Assert.False(cache.TryRead(new PageId(1), new byte[PageContent.Size]));
    }

    [Fact]
    public async Task Concurrent_readers_never_see_torn_or_foreign_bytes_while_frames_are_recycled()
    {
        // Runs until the readers have checked enough hits (not for a fixed time: on a loaded
        // machine the readers may get little CPU), at least 1.5 s, at most 60 s.
        const long WantedHits = 2000;
        using var cache = new PageCache(16 * PageContent.Size);
        using var stop = new CancellationTokenSource();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long hits = 0;
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(() =>
        {
            var buf = new byte[PageContent.Size];
            var rnd = new Random(r);
            while (!stop.IsCancelled())
            {
                uint id = (uint)rnd.Next(1, 64);
                if (!cache.TryRead(new PageId(id), buf)) continue;
                var words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(buf);
                Assert.True(words.IndexOfAnyExcept(id) < 0, $"page {id} read foreign bytes");
                Interlocked.Increment(ref hits);
            }
        })).ToArray();
        var rndw = new Random(9);
        while ((Interlocked.Read(ref hits) < WantedHits || clock.Elapsed < TimeSpan.FromSeconds(1.5))
               && clock.Elapsed < TimeSpan.FromSeconds(60) && !readers.Any(t => t.IsFaulted))
        {
            uint id = (uint)rndw.Next(1, 64);
            if (rndw.Next(8) == 0) cache.Invalidate(new PageId(id));
            else cache.Insert(new PageId(id), Page(id));
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.True(hits >= WantedHits, $"only {hits} hits in {clock.Elapsed.TotalSeconds:0.0} s");
    }

    [Fact]
    public void One_cached_copy_per_distinct_page_however_many_mappings_share_it()
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 64 * PageContent.Size });
        byte[] data = TestEngine.Bytes(8 * PageContent.Size, 1);
        t.Engine.OpenMapping(1).Write(0, data);
        for (ulong i = 2; i <= 10; i++) t.Engine.CloneMapping(t.Engine.OpenMapping(1), t.Engine.OpenMapping(i));
        for (ulong i = 1; i <= 10; i++) TestEngine.ReadAll(t.Engine.OpenMapping(i));
        Assert.Equal(8, t.Engine.Cache.Count);
    }
}

internal static class CancellationExtensions
{
    public static bool IsCancelled(this CancellationTokenSource s) => s.IsCancellationRequested;
}

public class PageCacheInvalidateRaceTests
{
    // A filler churns a small cache (evictions, tombstones, table rebuilds) while ids of another
    // range are inserted and invalidated: every invalidated id must be gone afterwards. Before
    // Invalidate took the fill lock, its lock-free probe could miss an entry during a rebuild.
    [Fact]
    public void Invalidate_is_exact_while_the_table_is_rebuilt()
    {
        using var cache = new PageCache(32 * PageContent.Size);
        var page = new byte[PageContent.Size];
        using var stop = new CancellationTokenSource();
        var filler = new Thread(() =>
        {
            uint id = 1;
            while (!stop.IsCancellationRequested) cache.Insert(new PageId(id++ % 5000 + 1), page);
        });
        filler.Start();
        try
        {
            for (uint i = 0; i < 20000; i++)
            {
                var id = new PageId(100_000 + i);
                cache.Insert(id, page);
                cache.Invalidate(id);
                Assert.False(cache.TryRead(id, page) && cache.Contains(id), $"page {id.Value} survived Invalidate");
            }
        }
        finally
        {
            stop.Cancel();
            filler.Join();
        }
        for (uint i = 0; i < 20000; i++) Assert.False(cache.Contains(new PageId(100_000 + i)));
    }

    // The race, made deterministic: a filler is stopped inside a table rebuild (the table is
    // cleared, the frames still hold their pages), and another thread invalidates a cached
    // page meanwhile. A lock-free "not cached" probe sees the cleared table and returns; the
    // rebuild then puts the page back and its bytes outlive the free. Invalidate must wait for
    // the rebuild and remove it.
    [Fact]
    public void Invalidate_during_a_table_rebuild_removes_the_page()
    {
        using var cache = new PageCache(16 * PageContent.Size);
        var page = new byte[PageContent.Size];
        var victim = new PageId(1_000_000);
        cache.Insert(victim, page);
        Thread? invalidator = null;
        cache.TableClearedForTest = () =>
        {
            cache.TableClearedForTest = null;
            invalidator = new Thread(() => cache.Invalidate(victim));
            invalidator.Start();
            invalidator.Join(TimeSpan.FromMilliseconds(300)); // with the fix it waits for the fill lock we hold
        };
        for (uint id = 1; cache.TableClearedForTest != null && id < 100_000; id++)
        {
            cache.Insert(new PageId(id), page);
            if (id % 2 == 0) cache.Invalidate(new PageId(id)); // tombstones lead to a rebuild
            if (cache.TableClearedForTest != null && !cache.Contains(victim)) cache.Insert(victim, page); // keep the victim cached until then
        }
        Assert.NotNull(invalidator);
        Assert.True(invalidator!.Join(TimeSpan.FromSeconds(10)));
        Assert.False(cache.Contains(victim));
        Assert.False(cache.TryRead(victim, page));
    }
}
