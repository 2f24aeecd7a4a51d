// The read and write hot paths allocate nothing on the managed heap once warm: the FUSE layer
// will call them from several threads for every request, and GC pauses would show as latency.
namespace DedupFs.Pages.Tests;

public class AllocationTests
{
    private const int P = PageContent.Size;

    [Fact]
    public void Cached_reads_and_whole_page_writes_do_not_allocate()
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 4096 * P });
        Mapping m = t.Engine.OpenMapping(1);
        var block = new byte[32 * P];
        var rnd = new Random(1);
        void Fill() => rnd.NextBytes(block);
        for (int i = 0; i < 64; i++) { Fill(); m.Write((i % 16) * (long)block.Length, block); }
        t.Engine.Sync();
        var page = new byte[P];
        for (int i = 0; i < 1000; i++) m.Read((i % 512) * (long)P, page);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20000; i++) m.Read((i * 7 % 512) * (long)P + (i % 3), page);
        long readBytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, readBytes);

        // Overwrites with new data and with duplicates: only amortised growth of the freed-slot list.
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++)
        {
            if (i % 2 == 0) block.AsSpan(0, 8).Fill((byte)i);  // cheap change: new pages
            m.Write((i % 16) * (long)block.Length, block);
        }
        long writeBytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(writeBytes < 200 * 32 * 8, $"{writeBytes} bytes allocated for 6400 page writes");

        // Duplicates of pages another file holds: the inline-dedup path (pin, compare, share).
        Mapping copy = t.Engine.OpenMapping(2);
        for (int i = 0; i < 16; i++) copy.Write(i * (long)block.Length, block);   // warm (chunk arrays)
        before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 200; i++) copy.Write((i % 16) * (long)block.Length + (i % 2) * 64 * (long)block.Length, block);
        long dupBytes = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(dupBytes < 200 * 32 * 8, $"{dupBytes} bytes allocated for 6400 deduplicated page writes");
    }
}
