// The deterministic workload of the crash tests. Step k's operations depend only on (seed, k),
// so the parent can compute the state after any step with a byte-array model while the child
// applies the same operations to a real store, syncing after every step and printing
// "synced k". The parent kills the child with SIGKILL at a random instant; the store must then
// reopen at exactly the state after step k or k+1 (the commit of k+1 may have finished before
// its line was printed), and fsck must find it clean.
using DedupFs.Pages;

namespace DedupFs.CrashHost;

/// <summary>One file operation of the workload.</summary>
public readonly record struct CrashOp(int Kind, int File, int Other, long Offset, long Length, int Pattern, int Seed);

/// <summary>Generates and applies the crash-test workload.</summary>
public static class CrashWorkload
{
    public const int Files = 4;
    private const int P = 4096;

    /// <summary>The operations of step <paramref name="step"/>.</summary>
    public static List<CrashOp> Ops(int seed, int step)
    {
        var r = new Random(unchecked(seed * 1_000_003 + step));
        var ops = new List<CrashOp>();
        int n = r.Next(1, 5);
        for (int i = 0; i < n; i++)
        {
            int kind = r.Next(100);
            kind = kind < 55 ? 0 : kind < 65 ? 1 : kind < 75 ? 2 : kind < 85 ? 3 : kind < 92 ? 4 : kind < 96 ? 5 : 6;
            bool aligned = r.Next(2) == 0;
            long off = r.Next(0, 48 * P), len = r.Next(1, 24 * P);
            if (aligned || kind == 3) { off &= ~(long)(P - 1); len = (len + P - 1) & ~(long)(P - 1); }
            ops.Add(new CrashOp(kind, r.Next(Files), r.Next(Files), off, len, r.Next(6), r.Next()));
        }
        return ops;
    }

    /// <summary>The bytes a write op writes: palette patterns (shareable) or noise.</summary>
    public static byte[] Data(CrashOp op)
    {
        var b = new byte[op.Length];
        if (op.Pattern >= 4) new Random(op.Seed).NextBytes(b);
        else
            for (int i = 0; i < b.Length; i++)
                b[i] = op.Pattern == 0 ? (byte)0 : (byte)(op.Pattern * 41 + ((op.Offset + i) % P) * 7);
        return b;
    }

    /// <summary>Applies one op to the engine.</summary>
    public static void Apply(PageEngine engine, CrashOp op)
    {
        Mapping m = engine.OpenMapping((ulong)op.File + 1), o = engine.OpenMapping((ulong)op.Other + 1);
        switch (op.Kind)
        {
            case 0: m.Write(op.Offset, Data(op)); break;
            case 1: m.Truncate(op.Length); break;
            case 2: m.PunchHole(op.Offset, op.Length); break;
            case 3:
                long src = op.Offset, eff = Math.Min(op.Length, Math.Max(m.Length - src, 0));
                if (eff > 0 && (eff % P == 0 || o.Length <= op.Offset + eff)) engine.Clone(m, src, o, op.Offset, op.Length);
                break;
            case 4: engine.CloneMapping(m, o); break;
            case 5: engine.DeleteMapping((ulong)op.File + 1); break;
            default: if (op.Pattern % 2 == 0) m.Unmerge(); else engine.MergeAll(); break;
        }
    }

    /// <summary>Applies one op to the model (byte arrays, one per file).</summary>
    public static void Apply(byte[][] files, CrashOp op)
    {
        ref byte[] f = ref files[op.File];
        switch (op.Kind)
        {
            case 0:
                if (f.Length < op.Offset + op.Length) Array.Resize(ref f, (int)(op.Offset + op.Length));
                Data(op).CopyTo(f, op.Offset);
                break;
            case 1: Array.Resize(ref f, (int)op.Length); break;
            case 2:
                long end = Math.Min(op.Offset + op.Length, f.Length);
                if (end > op.Offset) Array.Clear(f, (int)op.Offset, (int)(end - op.Offset));
                break;
            case 3:
                long src = op.Offset, eff = Math.Min(op.Length, Math.Max(f.Length - src, 0));
                ref byte[] o = ref files[op.Other];
                if (eff > 0 && (eff % P == 0 || o.Length <= op.Offset + eff))
                {
                    byte[] chunk = f.AsSpan((int)src, (int)eff).ToArray();
                    if (o.Length < op.Offset + eff) Array.Resize(ref o, (int)(op.Offset + eff));
                    chunk.CopyTo(o, op.Offset);
                }
                break;
            case 4: if (op.File != op.Other) files[op.Other] = (byte[])f.Clone(); break;
            case 5: f = []; break;
        }
    }
}
