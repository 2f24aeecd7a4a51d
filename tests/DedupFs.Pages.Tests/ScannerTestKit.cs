// Helpers for the merge scanner tests: engines without inline dedup (so identical pages stay
// private until the scanner merges them), page patterns, and the KSM.md §5 formulas.
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

internal static class ScannerTestKit
{
    public const int P = PageContent.Size;

    public static TestEngine NewEngine(bool mergeableByDefault = true, bool inlineDedup = false) =>
        new(new PageEngineOptions { CacheBytes = 1 << 20, InlineDedup = inlineDedup, MergeableByDefault = mergeableByDefault });

    /// <summary>A page whose bytes are a function of <paramref name="tag"/> (never all zeros).</summary>
    public static byte[] Pattern(int tag)
    {
        var b = new byte[P];
        new Random(tag).NextBytes(b);
        BitConverter.TryWriteBytes(b, tag);
        b[4] = 0xA5;
        return b;
    }

    /// <summary>Pages tag0, tag0+1, ... concatenated.</summary>
    public static byte[] Pages(int firstTag, int count)
    {
        var b = new byte[count * P];
        for (int i = 0; i < count; i++) Pattern(firstTag + i).CopyTo(b, i * P);
        return b;
    }

    /// <summary>The formulas of KSM.md §5 and DESIGN.md invariant 4, recomputed from the mappings.</summary>
    public static MergeScannerStatistics AssertFormulas(TestEngine t, MergeScannerStatistics? previous = null, bool verify = true)
    {
        MergeScanner s = t.Engine.Scanner;
        MergeScannerStatistics st = s.Statistics;
        Assert.Equal(Math.Max(0, st.RmapItems - st.PagesShared - st.PagesSharing - st.PagesUnshared), st.PagesVolatile);
        Assert.Equal((st.PagesSharing + st.KsmZeroPages) * P - st.RmapItems * 8, st.GeneralProfit);
        Assert.True(st.StableNodeDups >= 2 * st.StableNodeChains);
        Assert.True(st.PagesSharing >= st.PagesShared);   // a shared page has two mappers at least
        // shared + sharing == slots that map a shared page
        long slotsOnShared = 0;
        var perPage = new Dictionary<uint, long>();
        foreach (ulong inode in t.Engine.Store.MappingInodes())
            t.Engine.Store.OpenSlotTable(inode).ForEachPage((_, id) => perPage[id.Value] = perPage.GetValueOrDefault(id.Value) + 1);
        foreach (long n in perPage.Values) if (n >= 2) slotsOnShared += n;
        Assert.Equal(slotsOnShared, st.PagesShared + st.PagesSharing);
        if (previous is { } p)
        {
            Assert.True(st.PagesScanned >= p.PagesScanned);
            Assert.True(st.PagesSkipped >= p.PagesSkipped);
            Assert.True(st.FullScans >= p.FullScans);
            Assert.True(st.CowKsm >= p.CowKsm);
        }
        foreach (string name in MergeScanner.StatisticNames)
        {
            Assert.Equal(0, s.Get(name, out string text));
            Assert.True(long.TryParse(text, out _), name);
        }
        if (verify) Assert.Empty(t.Engine.Verify());
        return st;
    }
}
