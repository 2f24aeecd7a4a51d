// Writers, readers, commits and the merge scanner at once (KSM.md §6.9): every page ends as its
// last write left it, no read ever sees bytes that were not one whole write, and the
// invariants hold afterwards. Contents repeat on purpose, so the scanner keeps finding merges
// while the writers keep replacing the pages it looks at.
using System.Collections.Concurrent;
using static DedupFs.Pages.Tests.ScannerTestKit;

namespace DedupFs.Pages.Tests;

public class MergeScannerRaceTests
{
    private const int PagesPerRange = 16, Choices = 4;

    private static int Tag(int idx, int choice) => 1 + idx * 10 + choice;

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, false)]
    [InlineData(4, true)]
    public async Task Writes_racing_the_scanner_lose_nothing(int seed, bool inlineDedup)
    {
        using TestEngine t = NewEngine(inlineDedup: inlineDedup);
        MergeScanner s = t.Engine.Scanner;
        s.PagesToScan = 16;
        s.SmartScan = false;
        s.UseZeroPages = true;
        const int Writers = 4, Writes = 300, Pages = 2 * PagesPerRange;
        var patterns = new ConcurrentDictionary<int, byte[]>();
        byte[] PatternOf(int tag) => patterns.GetOrAdd(tag, Pattern);

        // Mappings 1 and 2 are written; 3 is an idle twin holding choice 0 everywhere, a stable partner.
        var last = new int[3, Pages];
        for (int m = 1; m <= 3; m++)
            for (int idx = 0; idx < Pages; idx++)
            {
                t.Engine.OpenMapping((ulong)m).Write((long)idx * P, PatternOf(Tag(idx, 0)));
                if (m <= 2) last[m, idx] = Tag(idx, 0);
            }

        var errors = new ConcurrentQueue<Exception>();
        var stop = new CancellationTokenSource();
        void Guard(Action a) { try { a(); } catch (Exception e) { errors.Enqueue(e); } }

        Task[] writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => Guard(() =>
        {
            var rnd = new Random(seed * 100 + w);
            int mapping = 1 + w % 2, first = (w / 2) * PagesPerRange;
            Mapping m = t.Engine.OpenMapping((ulong)mapping);
            // At least Writes writes, and on until the scanner has merged under our feet a few dozen
            // times (bounded by time, so a slow machine still finishes).
            var until = DateTime.UtcNow.AddSeconds(20);
            for (int i = 0; i < Writes || (!inlineDedup && t.Engine.Statistics.PagesMerged < 50 && DateTime.UtcNow < until); i++)
            {
                int idx = first + rnd.Next(PagesPerRange);
                if (rnd.Next(4) == 0 && idx + 1 < first + PagesPerRange)
                {
                    // Two pages in one write.
                    int c0 = rnd.Next(Choices), c1 = rnd.Next(Choices);
                    var two = new byte[2 * P];
                    PatternOf(Tag(idx, c0)).CopyTo(two, 0);
                    PatternOf(Tag(idx + 1, c1)).CopyTo(two, P);
                    m.Write((long)idx * P, two);
                    last[mapping, idx] = Tag(idx, c0);
                    last[mapping, idx + 1] = Tag(idx + 1, c1);
                }
                else
                {
                    int c = rnd.Next(Choices);
                    m.Write((long)idx * P, PatternOf(Tag(idx, c)));
                    last[mapping, idx] = Tag(idx, c);
                }
                if (i % 8 == 0) Thread.Sleep(1);   // give pages time to hold still for two visits
            }
        }))).ToArray();
        Task scanner = Task.Run(() => Guard(() =>
        {
            while (!stop.IsCancellationRequested) s.ScanBatch();
        }));
        Task reader = Task.Run(() => Guard(() =>
        {
            var rnd = new Random(seed);
            var page = new byte[P];
            while (!stop.IsCancellationRequested)
            {
                int mapping = 1 + rnd.Next(3), idx = rnd.Next(Pages);
                t.Engine.OpenMapping((ulong)mapping).Read((long)idx * P, page);
                int tag = BitConverter.ToInt32(page);
                int choice = tag - Tag(idx, 0);
                if (choice < 0 || choice >= Choices || !page.AsSpan().SequenceEqual(PatternOf(tag)))
                    throw new Xunit.Sdk.XunitException($"mapping {mapping} page {idx}: torn or foreign bytes (tag {tag})");
            }
        }));
        Task committer = Task.Run(() => Guard(() =>
        {
            while (!stop.IsCancellationRequested) { t.Engine.Sync(); Thread.Sleep(3); }
        }));
        Task statistics = Task.Run(() => Guard(() =>
        {
            // A reader of .dedupfs/ksm/* meanwhile: cumulative counters never step back.
            MergeScannerStatistics before = s.Statistics;
            while (!stop.IsCancellationRequested)
            {
                MergeScannerStatistics now = s.Statistics;
                if (now.PagesScanned < before.PagesScanned || now.PagesSkipped < before.PagesSkipped
                    || now.FullScans < before.FullScans || now.CowKsm < before.CowKsm || now.PagesVolatile < 0)
                    throw new Xunit.Sdk.XunitException($"a counter went back: {before} -> {now}");
                before = now;
                Thread.Sleep(1);
            }
        }));
        await Task.WhenAll(writers);
        stop.Cancel();
        await Task.WhenAll(scanner, reader, committer, statistics);
        Assert.Empty(errors);

        for (int m = 1; m <= 2; m++)
        {
            Mapping map = t.Engine.OpenMapping((ulong)m);
            for (int idx = 0; idx < Pages; idx++)
            {
                var page = new byte[P];
                map.Read((long)idx * P, page);
                Assert.True(page.AsSpan().SequenceEqual(PatternOf(last[m, idx])), $"mapping {m} page {idx} lost its last write");
            }
        }
        if (!inlineDedup) Assert.True(t.Engine.Statistics.PagesMerged > 0, "the scanner never merged anything: the race was not exercised");
        AssertFormulas(t);

        // Idle again: the rest of the pass under way, then two whole passes, merge every choice-0
        // page with the twin, and nothing reads differently.
        s.RunFullScan();
        s.RunFullScan();
        s.RunFullScan();
        AssertFormulas(t);
        for (int idx = 0; idx < Pages; idx++)
            for (int m = 1; m <= 2; m++)
                if (last[m, idx] == Tag(idx, 0)) Assert.Equal(t.Engine.OpenMapping(3).PageAt(idx), t.Engine.OpenMapping((ulong)m).PageAt(idx));
    }
}
