// Several threads drive one engine at once, as FUSE worker threads will: writers to disjoint
// regions of one mapping, readers, clones and a committer running concurrently. At the end
// every region holds what its writer wrote last, and the invariants hold.
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class ConcurrencyTests
{
    private const int P = PageContent.Size;

    [Fact]
    public async Task Concurrent_writers_readers_clones_and_commits_stay_consistent()
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 32 * P });
        const int Writers = 4, Region = 24 * P, Rounds = 60;
        Mapping shared = t.Engine.OpenMapping(1);
        var last = new byte[Writers][];
        var stop = new CancellationTokenSource();
        var errors = new System.Collections.Concurrent.ConcurrentQueue<Exception>();
        void Guard(Action a) { try { a(); } catch (Exception e) { errors.Enqueue(e); } }

        Task[] writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => Guard(() =>
        {
            var rnd = new Random(w);
            var mine = new byte[Region];
            for (int round = 0; round < Rounds; round++)
            {
                int off = rnd.Next(Region - 1), len = rnd.Next(1, Math.Min(3 * P, Region - off));
                var chunk = new byte[len];
                if (rnd.Next(3) == 0) chunk.AsSpan().Fill((byte)(round % 5)); else rnd.NextBytes(chunk); // duplicates and noise
                shared.Write((long)w * Region + off, chunk);
                chunk.CopyTo(mine, off);
                if (round % 10 == 0) t.Engine.CloneMapping(shared, t.Engine.OpenMapping((ulong)(100 + w)));
            }
            last[w] = mine;
        }))).ToArray();
        Task reader = Task.Run(() => Guard(() =>
        {
            var buf = new byte[64 * 1024];
            var rnd = new Random(99);
            while (!stop.IsCancellationRequested) shared.Read(rnd.Next(Writers * Region), buf);
        }));
        Task committer = Task.Run(() => Guard(() =>
        {
            while (!stop.IsCancellationRequested) { t.Engine.Sync(); Thread.Sleep(5); }
        }));
        await Task.WhenAll(writers);
        stop.Cancel();
        await Task.WhenAll(reader, committer);
        Assert.Empty(errors);

        var all = new byte[Writers * Region];
        shared.Read(0, all);
        for (int w = 0; w < Writers; w++)
        {
            // The region may end short of Region when its tail was never written: compare what exists.
            Assert.True(all.AsSpan(w * Region, Region).SequenceEqual(last[w]), $"writer {w}'s region differs");
        }
        Assert.Empty(t.Engine.Verify());
        t.Reopen();
        var again = new byte[Writers * Region];
        t.Engine.OpenMapping(1).Read(0, again);
        Assert.Equal(all, again);
        Assert.Empty(t.Engine.Verify());
    }
}
