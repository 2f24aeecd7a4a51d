// Model-based property test: random sequences of write, truncate, punch, clone, unmerge,
// merge, delete, sync, clean reopen and crash-reopen run against the engine and against a
// model made of plain byte arrays. After every step every file reads exactly as the model
// says (invariants 1, 2, 5) and the engine's own recomputation of refcounts, rmaps, content
// index and statistics finds nothing (invariants 3, 4). Cumulative counters never go down.
//
// Page contents come from a small palette so that sharing happens constantly: byte x of a
// file written with pattern p is f(p, x mod 4096), so any two page-aligned writes with the
// same pattern produce identical pages; pattern 0 writes zeros; pattern 7 writes unique noise.
using CsCheck;
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class ModelTests
{
    private const int P = PageContent.Size;
    private const int Files = 4;

    private static byte PatternByte(int pattern, long x) =>
        pattern == 0 ? (byte)0 : (byte)(pattern * 37 + (x % P) * 13 + ((x % P) >> 8));

    private static byte[] Content(int pattern, long offset, int length, int seed)
    {
        var b = new byte[length];
        if (pattern == 7) new Random(seed).NextBytes(b);
        else for (int i = 0; i < length; i++) b[i] = PatternByte(pattern, offset + i);
        return b;
    }

    private static void Resize(ref byte[] file, long length)
    {
        var n = new byte[length];
        Array.Copy(file, n, Math.Min(file.Length, length));
        file = n;
    }

    private static readonly Gen<int[]> Op = Gen.Int[0, int.MaxValue].Array[7];

    [Fact]
    public void Engine_matches_byte_array_model()
    {
        Op.Array[1, 40].Sample(ops =>
        {
            using var t = new TestEngine(new PageEngineOptions { CacheBytes = 64 * P, InlineDedup = ops.Length % 3 != 0 });
            var model = new byte[Files][];
            for (int f = 0; f < Files; f++) model[f] = [];
            var synced = model.Select(m => (byte[])m.Clone()).ToArray();
            KsmStatistics last = t.Engine.Statistics;
            var trace = new List<string>();
            foreach (int[] op in ops)
            {
                int kind = op[0] % 16, f1 = op[1] % Files, f2 = op[2] % Files;
                Mapping m1 = t.Engine.OpenMapping((ulong)f1 + 1), m2 = t.Engine.OpenMapping((ulong)f2 + 1);
                switch (kind)
                {
                    case <= 4: // write (most common)
                    {
                        bool aligned = op[6] % 2 == 0;
                        long off = op[3] % ((op[6] % 5 == 0 ? 40 : 12) * P);   // sometimes far: chunk growth
                        int len = op[4] % (5 * P) + 1;
                        if (aligned) { off &= ~(long)(P - 1); len = (len + P - 1) & ~(P - 1); }
                        int pattern = op[5] % 8;
                        byte[] data = Content(pattern, off, len, op[6]);
                        trace.Add($"write f{f1} @{off} len {len} pattern {pattern}");
                        m1.Write(off, data);
                        if (model[f1].Length < off + len) Resize(ref model[f1], off + len);
                        data.CopyTo(model[f1], off);
                        break;
                    }
                    case 5:
                    {
                        long len = op[3] % (14 * P);
                        trace.Add($"truncate f{f1} to {len}");
                        m1.Truncate(len);
                        Resize(ref model[f1], len);
                        break;
                    }
                    case 6:
                    {
                        long off = op[3] % (12 * P), len = op[4] % (6 * P);
                        trace.Add($"punch f{f1} @{off} len {len}");
                        m1.PunchHole(off, len);
                        long end = Math.Min(off + len, model[f1].Length);
                        if (end > off) Array.Clear(model[f1], (int)off, (int)(end - off));
                        break;
                    }
                    case 7:
                    case 8:
                    {
                        long srcOff = (long)(op[3] % 10) * P, dstOff = (long)(op[4] % (op[6] % 3 == 0 ? 40 : 10)) * P;
                        long len = (long)(op[5] % 6 + 1) * P;
                        long srcLen = model[f1].Length;
                        long eff = Math.Min(len, Math.Max(srcLen - srcOff, 0));
                        bool tailOk = eff % P == 0 || (srcOff + eff >= srcLen && dstOff + eff >= model[f2].Length);
                        trace.Add($"clone f{f1} @{srcOff} -> f{f2} @{dstOff} len {len}");
                        if (!tailOk)
                        {
                            Assert.Throws<ArgumentException>(() => t.Engine.Clone(m1, srcOff, m2, dstOff, len));
                            break;
                        }
                        long n = t.Engine.Clone(m1, srcOff, m2, dstOff, len);
                        Assert.Equal(eff, n);
                        if (eff <= 0) break;
                        byte[] chunk = model[f1].AsSpan((int)srcOff, (int)eff).ToArray();
                        if (model[f2].Length < dstOff + eff) Resize(ref model[f2], dstOff + eff);
                        chunk.CopyTo(model[f2], dstOff);
                        break;
                    }
                    case 9:
                        trace.Add($"clone whole f{f1} -> f{f2}");
                        t.Engine.CloneMapping(m1, m2);
                        if (f1 != f2) model[f2] = (byte[])model[f1].Clone();
                        break;
                    case 10:
                        trace.Add($"unmerge f{f1}");
                        m1.Unmerge();
                        break;
                    case 11:
                        trace.Add("merge all");
                        t.Engine.MergeAll();
                        break;
                    case 12:
                        trace.Add($"delete f{f1}");
                        t.Engine.DeleteMapping((ulong)f1 + 1);
                        model[f1] = [];
                        break;
                    case 13:
                        trace.Add("sync");
                        t.Engine.Sync();
                        synced = model.Select(m => (byte[])m.Clone()).ToArray();
                        break;
                    case 14:
                        trace.Add("reopen");
                        t.Reopen();
                        synced = model.Select(m => (byte[])m.Clone()).ToArray();
                        last = t.Engine.Statistics with { CowKsm = 0, PagesMerged = 0, PagesUnmerged = 0, InlineDedupHits = 0, ZeroPagesSkipped = 0 };
                        break;
                    default:
                        trace.Add("crash");
                        t.CrashAndReopen();
                        model = synced.Select(m => (byte[])m.Clone()).ToArray();
                        last = t.Engine.Statistics with { CowKsm = 0, PagesMerged = 0, PagesUnmerged = 0, InlineDedupHits = 0, ZeroPagesSkipped = 0 };
                        break;
                }
                for (int f = 0; f < Files; f++)
                {
                    Mapping m = t.Engine.OpenMapping((ulong)f + 1);
                    Assert.True(model[f].Length == m.Length, $"f{f} length {m.Length} != {model[f].Length}\n{string.Join("\n", trace)}");
                    byte[] actual = TestEngine.ReadAll(m);
                    if (!actual.AsSpan().SequenceEqual(model[f]))
                        Assert.Fail($"f{f} content differs at {actual.AsSpan().CommonPrefixLength(model[f])}\n{string.Join("\n", trace)}");
                }
                List<string> problems = t.Engine.Verify(checkBytes: true);
                Assert.True(problems.Count == 0, string.Join("\n", problems) + "\n--\n" + string.Join("\n", trace));
                KsmStatistics now = t.Engine.Statistics;
                Assert.True(now.CowKsm >= last.CowKsm && now.PagesMerged >= last.PagesMerged && now.PagesUnmerged >= last.PagesUnmerged
                            && now.InlineDedupHits >= last.InlineDedupHits, "a cumulative counter went down");
                last = now;
            }
        }, iter: 150);
    }
}
