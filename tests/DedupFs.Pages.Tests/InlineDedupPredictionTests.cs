// Inline dedup's sequential prediction (Mapping.WritePages.cs) guesses that slot i+1 of a copy
// matches the page after slot i's twin. A guess must never share a page whose bytes differ,
// nor touch a page that is free or does not exist; these tests make the guesses wrong on
// purpose and check bytes, sharing and the engine's invariants.
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class InlineDedupPredictionTests
{
    private const int P = PageContent.Size;

    [Theory]
    [InlineData(1 << 20)]   // candidates compared in the cache
    [InlineData(4 * P)]     // mostly read from disk, in runs
    public void Copy_with_changed_pages_shares_only_the_identical_ones(long cacheBytes)
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = cacheBytes });
        byte[] data = TestEngine.Bytes(100 * P, 11);
        t.Engine.OpenMapping(1).Write(0, data);
        byte[] copy = (byte[])data.Clone();
        int[] changed = [0, 5, 31, 32, 33, 64, 99];   // inside batches and on their edges
        foreach (int p in changed) copy[p * P + 17] ^= 0x5A;
        Mapping b = t.Engine.OpenMapping(2);
        for (int off = 0; off < copy.Length; off += 32 * P)   // 128 KiB writes, as FUSE sends them
            b.Write(off, copy.AsSpan(off, Math.Min(32 * P, copy.Length - off)));

        Assert.Equal(copy, TestEngine.ReadAll(b));
        Assert.Equal(data, TestEngine.ReadAll(t.Engine.OpenMapping(1)));
        KsmStatistics st = t.Engine.Statistics;
        Assert.Equal(100 + changed.Length, st.UniquePages);
        Assert.Equal(100 - changed.Length, st.PagesShared);
        Assert.Equal(100 - changed.Length, st.InlineDedupHits);
        for (int p = 0; p < 100; p++)
            Assert.Equal(!changed.Contains(p), t.Engine.OpenMapping(1).PageAt(p) == b.PageAt(p));
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Unique_data_after_a_copied_region_is_stored_not_guessed()
    {
        using var t = new TestEngine();
        byte[] data = TestEngine.Bytes(64 * P, 12);
        t.Engine.OpenMapping(1).Write(0, data);
        Mapping b = t.Engine.OpenMapping(2);
        b.Write(0, data.AsSpan(0, 32 * P));                     // a twin run: the guess is set
        byte[] fresh = TestEngine.Bytes(64 * P, 13);
        b.Write(32 * P, fresh.AsSpan(0, 32 * P));                // the guesses are all wrong now
        b.Write(64 * P, fresh.AsSpan(32 * P));                   // and no longer made
        Assert.Equal([.. data.AsSpan(0, 32 * P), .. fresh], TestEngine.ReadAll(b));
        Assert.Equal(64 + 64, t.Engine.Statistics.UniquePages);
        Assert.Equal(32, t.Engine.Statistics.PagesShared);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Guesses_at_freed_reused_and_nonexistent_pages_are_harmless()
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 4 * P });
        byte[] data = TestEngine.Bytes(64 * P, 14);
        t.Engine.OpenMapping(1).Write(0, data);
        Mapping b = t.Engine.OpenMapping(2);
        b.Write(0, data.AsSpan(0, 32 * P));          // guess: b[i] = a's page for i
        t.Engine.DeleteMapping(1);                   // a's last 32 pages are freed...
        t.Engine.Sync();
        t.Engine.OpenMapping(3).Write(0, TestEngine.Bytes(8 * P, 15));   // ...and some slots reused
        // Slots 32..63 of b now guess pages that are free, reused by other bytes, or beyond
        // the page file; the bytes are a's old ones, which no live page holds any more.
        b.Write(32 * P, data.AsSpan(32 * P, 32 * P));
        b.Write(1L << 30, data.AsSpan(0, 4 * P));    // guesses far beyond the page file
        Assert.Equal(data, TestEngine.ReadAll(b).AsSpan(0, 64 * P).ToArray());
        byte[] tail = new byte[4 * P];
        b.Read(1L << 30, tail);
        Assert.Equal(data.AsSpan(0, 4 * P).ToArray(), tail);
        Assert.Empty(t.Engine.Verify());
        t.Reopen();
        Assert.Equal(data, TestEngine.ReadAll(t.Engine.OpenMapping(2)).AsSpan(0, 64 * P).ToArray());
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Guesses_never_replace_an_existing_page_and_holes_stay_holes()
    {
        using var t = new TestEngine();
        byte[] data = TestEngine.Bytes(32 * P, 16);
        t.Engine.OpenMapping(1).Write(0, data);
        Mapping b = t.Engine.OpenMapping(2);
        byte[] other = TestEngine.Bytes(32 * P, 17);
        b.Write(0, other);                                  // b's slots are not empty
        b.Write(0, data.AsSpan(0, P));                      // sets a guess for slot 1...
        byte[] mixed = (byte[])data.Clone();
        Array.Clear(mixed, 3 * P, 2 * P);                   // zeros among twins
        b.Write(0, mixed);                                  // ...existing slots hash and compare as before
        Assert.Equal(mixed, TestEngine.ReadAll(b));
        Assert.True(b.PageAt(3).IsNone && b.PageAt(4).IsNone);
        Assert.Equal(t.Engine.OpenMapping(1).PageAt(7), b.PageAt(7));
        Assert.Empty(t.Engine.Verify());
    }
}
