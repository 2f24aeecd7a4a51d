// Corruption tests through the whole engine: flip a random byte of a random live page in
// pages.dat; every read of that page (through any file that maps it) fails with EIO, every
// other byte of every file still reads right, and fsck names the page and its files.
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class CorruptionTests
{
    private const int P = PageContent.Size;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Flipped_page_byte_is_EIO_for_its_readers_and_nothing_else_is_lost(int seed)
    {
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 0 });
        var rnd = new Random(seed);
        var files = new Dictionary<ulong, byte[]>();
        for (ulong f = 1; f <= 3; f++)
        {
            byte[] data = TestEngine.Bytes(rnd.Next(4, 12) * P + rnd.Next(P), seed * 10 + (int)f);
            t.Engine.OpenMapping(f).Write(0, data);
            files[f] = data;
        }
        t.Engine.CloneMapping(t.Engine.OpenMapping(1), t.Engine.OpenMapping(4));
        files[4] = files[1];
        t.Reopen();

        // Pick a victim page and flip one byte of it on disk.
        Mapping m1 = t.Engine.OpenMapping(1);
        long victimIndex = rnd.Next((int)(m1.Length / P));
        PageId victim = m1.PageAt(victimIndex);
        using (var fs = new FileStream(Path.Combine(t.Dir, "pages.dat"), FileMode.Open, FileAccess.ReadWrite))
        {
            fs.Position = victim.Slot * P + rnd.Next(P);
            int b = fs.ReadByte();
            fs.Position--;
            fs.WriteByte((byte)(b ^ (1 << rnd.Next(8))));
        }

        var buf = new byte[P];
        foreach (var (inode, data) in files)
        {
            Mapping m = t.Engine.OpenMapping(inode);
            for (long idx = 0; idx * P < data.Length; idx++)
            {
                int n = (int)Math.Min(P, data.Length - idx * P);
                if (m.PageAt(idx) == victim)
                {
                    var e = Assert.Throws<PageChecksumException>(() => m.Read(idx * P, buf));
                    Assert.Equal(5, e.Errno);
                    continue;
                }
                Assert.Equal(n, m.Read(idx * P, buf));
                Assert.True(buf.AsSpan(0, n).SequenceEqual(data.AsSpan((int)(idx * P), n)), $"inode {inode} page {idx} changed");
            }
        }
        Assert.Contains(t.Log, l => l.Contains(victim.ToString()));
        t.Engine.Dispose();
        FsckReport report = Fsck.Run(t.Dir);
        string problem = Assert.Single(report.Problems);
        Assert.Contains(victim.ToString(), problem);
        Assert.Contains("and 1 more", problem);    // file 1 and its clone, file 4
        t.Reopen();
    }
}
