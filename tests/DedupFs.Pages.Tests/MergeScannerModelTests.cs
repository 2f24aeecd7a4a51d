// Random sequences of writes, truncations, clones, punches, scans, tunable changes and
// run = 2 against a model of the files' bytes: after every step every file reads as the model
// says (KSM.md §6.1), and the statistics formulas and refcount invariants hold (§6.3, §6.4).
using static DedupFs.Pages.Tests.ScannerTestKit;

namespace DedupFs.Pages.Tests;

public class MergeScannerModelTests
{
    private const int Files = 4, MaxPages = 8;

    [Theory]
    [InlineData(1, false)]
    [InlineData(2, false)]
    [InlineData(3, true)]
    [InlineData(4, false)]
    [InlineData(5, false)]
    [InlineData(6, true)]
    [InlineData(7, false)]
    [InlineData(8, false)]
    public void Random_operations_keep_bytes_and_formulas(int seed, bool inlineDedup)
    {
        using TestEngine t = NewEngine(inlineDedup: inlineDedup);
        MergeScanner s = t.Engine.Scanner;
        var rnd = new Random(seed);
        var model = new byte[Files + 1][];
        for (int f = 1; f <= Files; f++) model[f] = [];
        Mapping M(int f) => t.Engine.OpenMapping((ulong)f);
        MergeScannerStatistics? previous = null;

        for (int step = 0; step < 250; step++)
        {
            int f = 1 + rnd.Next(Files);
            string op;
            switch (rnd.Next(15))
            {
                case 0 or 1 or 2:
                {
                    // Whole pages from a small alphabet: duplicates everywhere.
                    int first = rnd.Next(MaxPages), count = 1 + rnd.Next(Math.Min(3, MaxPages - first));
                    var data = new byte[count * P];
                    for (int k = 0; k < count; k++) Pattern(1 + rnd.Next(5)).CopyTo(data, k * P);
                    M(f).Write((long)first * P, data);
                    Apply(ref model[f], (long)first * P, data);
                    op = $"write {f} pages {first}+{count}";
                    break;
                }
                case 3:
                {
                    int off = rnd.Next(MaxPages * P - 100), len = 1 + rnd.Next(100);
                    var data = new byte[len];
                    if (rnd.Next(2) == 0) rnd.NextBytes(data);
                    M(f).Write(off, data);
                    Apply(ref model[f], off, data);
                    op = $"partial write {f} at {off}+{len}";
                    break;
                }
                case 4:
                {
                    long len = rnd.Next(MaxPages * P);
                    M(f).Truncate(len);
                    Array.Resize(ref model[f], (int)len);
                    op = $"truncate {f} to {len}";
                    break;
                }
                case 5:
                {
                    int g = 1 + rnd.Next(Files);
                    t.Engine.CloneMapping(M(f), M(g));
                    if (f != g) model[g] = (byte[])model[f].Clone();
                    op = $"clone {f} -> {g}";
                    break;
                }
                case 6:
                {
                    long off = rnd.Next(MaxPages * P), len = rnd.Next(3 * P);
                    M(f).PunchHole(off, len);
                    long end = Math.Min(off + len, model[f].Length);
                    if (end > off) model[f].AsSpan((int)off, (int)(end - off)).Clear();
                    op = $"punch {f} {off}+{len}";
                    break;
                }
                case 7 or 8 or 9:
                    s.PagesToScan = 1 + rnd.Next(20);
                    s.ScanBatch();
                    op = $"scan batch of {s.PagesToScan}";
                    break;
                case 10:
                    s.RunFullScan();
                    op = "full scan";
                    break;
                case 11:
                {
                    int errno = s.Set("max_page_sharing", (2 + rnd.Next(4)).ToString());
                    Assert.True(errno is 0 or 16, $"max_page_sharing: errno {errno}");
                    s.UseZeroPages = rnd.Next(2) == 0;
                    s.SmartScan = rnd.Next(2) == 0;
                    op = $"knobs: max_page_sharing errno {errno}, zero {s.UseZeroPages}, smart {s.SmartScan}";
                    break;
                }
                case 12:
                    M(f).Mergeable = rnd.Next(3) != 0;
                    t.Engine.Sync();
                    op = $"mergeable {f} = {M(f).Mergeable}, sync";
                    break;
                case 13 when rnd.Next(2) == 0:
                    if (rnd.Next(2) == 0)
                    {
                        t.Engine.DeleteMapping((ulong)f);   // unlink: the scanner drops its table next pass
                        model[f] = [];
                        op = $"delete {f}";
                    }
                    else
                    {
                        t.Engine.Sync();
                        bool closed = t.Engine.CloseMapping((ulong)f);   // FORGET: the scanner reopens it when it comes by
                        op = $"sync, close {f}: {closed}";
                    }
                    break;
                default:
                    if (rnd.Next(4) == 0)
                    {
                        Assert.Equal(0, s.Set("run", "2"));
                        op = "run = 2";
                        // Every mergeable mapping is private now.
                        for (int g = 1; g <= Files; g++)
                            if (M(g).Mergeable) Assert.Equal(0, s.MappingStatistics(M(g)).MergedSlots);
                    }
                    else
                    {
                        s.RunFullScan();
                        s.RunFullScan();
                        op = "two full scans";
                    }
                    break;
            }
            for (int g = 1; g <= Files; g++)
            {
                Assert.Equal(model[g].Length, M(g).Length);
                Assert.True(model[g].AsSpan().SequenceEqual(TestEngine.ReadAll(M(g))), $"step {step} ({op}): file {g} differs");
            }
            previous = AssertFormulas(t, previous);
        }
        Assert.True(t.Engine.Statistics.PagesMerged > 0 || inlineDedup, "nothing merged: the model did not exercise the scanner");
    }

    private static void Apply(ref byte[] file, long offset, byte[] data)
    {
        if (offset + data.Length > file.Length) Array.Resize(ref file, (int)(offset + data.Length));
        data.CopyTo(file, offset);
    }
}
