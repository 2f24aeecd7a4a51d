// Crash tests: a child process (DedupFs.CrashHost) runs the deterministic CrashWorkload on a
// store, syncing after every step, and is killed with SIGKILL at a random instant, many
// times in a row on the same store. After each kill: reopen, check that every file equals
// the model after the last acknowledged step (or the next one, whose commit may have
// completed before the acknowledgement was printed), check the engine's invariants, and run
// fsck, which must be clean. Then the next child continues from there.
using System.Diagnostics;
using DedupFs.CrashHost;
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class CrashTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void Store_survives_repeated_SIGKILL_with_every_synced_byte()
    {
        string dir = Path.Combine(Path.GetTempPath(), "dedupfs-crash-" + Guid.NewGuid().ToString("N"));
        string host = Path.Combine(AppContext.BaseDirectory, "DedupFs.CrashHost.dll");
        // Fixed for CI; DEDUPFS_CRASH_SEED / DEDUPFS_CRASH_ROUNDS explore further by hand.
        var rng = new Random(int.TryParse(Environment.GetEnvironmentVariable("DEDUPFS_CRASH_SEED"), out int s) ? s : 20261128);
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("DEDUPFS_CRASH_ROUNDS"), out int r) ? r : 12;
        int seed = rng.Next(1000);
        var model = new byte[CrashWorkload.Files][];
        for (int f = 0; f < model.Length; f++) model[f] = [];
        int nextStep = 0, kills = 0, totalSteps = 0;
        try
        {
            for (int round = 0; round < rounds; round++)
            {
                int acked = RunAndKill(host, dir, seed, nextStep, rng.Next(100, 600));
                kills++;
                // The disk holds the state after step `acked` or `acked + 1`.
                byte[][] atAcked = Advance(model, seed, nextStep, acked);
                byte[][] atNext = Advance(atAcked, seed, acked + 1, acked + 1);
                int reached;
                using (PageEngine engine = PageEngine.Open(dir, new StoreOptions { CommitInterval = null, CommitAfterPages = 0 }))
                {
                    bool matchesAcked = Matches(engine, atAcked);
                    Assert.True(matchesAcked || Matches(engine, atNext),
                        $"round {round}: store matches neither step {acked} nor {acked + 1}");
                    reached = matchesAcked ? acked : acked + 1;
                    List<string> problems = engine.Verify();
                    Assert.True(problems.Count == 0, string.Join("\n", problems));
                }
                FsckReport report = Fsck.Run(dir);
                Assert.True(report.Clean, $"round {round}: {report}");
                model = reached == acked ? atAcked : atNext;
                totalSteps += reached - nextStep + 1;
                nextStep = reached + 1;
            }
            Assert.True(totalSteps > rounds, $"only {totalSteps} steps were synced in {kills} runs");
            output.WriteLine($"{kills} kills, {totalSteps} synced steps verified");
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (DirectoryNotFoundException) { }
        }
    }

    // With background commits every few milliseconds, a kill can leave the store at the end of
    // any operation after the last acknowledged step: the store must match one of those states,
    // and be consistent and fsck-clean, every time.
    [Fact]
    public void Background_commits_leave_a_consistent_store_at_an_operation_boundary()
    {
        string dir = Path.Combine(Path.GetTempPath(), "dedupfs-crash-" + Guid.NewGuid().ToString("N"));
        string host = Path.Combine(AppContext.BaseDirectory, "DedupFs.CrashHost.dll");
        var rng = new Random(int.TryParse(Environment.GetEnvironmentVariable("DEDUPFS_CRASH_SEED"), out int s) ? s : 4242);
        int rounds = int.TryParse(Environment.GetEnvironmentVariable("DEDUPFS_CRASH_ROUNDS"), out int r) ? r : 8;
        int seed = rng.Next(1000);
        var model = new byte[CrashWorkload.Files][];
        for (int f = 0; f < model.Length; f++) model[f] = [];
        int nextStep = 0, midStep = 0;
        try
        {
            for (int round = 0; round < rounds; round++)
            {
                int acked = RunAndKill(host, dir, seed, nextStep, rng.Next(100, 500), background: true);
                byte[][] state = Advance(model, seed, nextStep, acked);
                // Candidate states: after step `acked`, then after each op of step acked + 1.
                var candidates = new List<(byte[][] Files, bool StepEnd)> { (state, true) };
                byte[][] cur = state;
                List<CrashOp> ops = CrashWorkload.Ops(seed, acked + 1);
                for (int i = 0; i < ops.Count; i++)
                {
                    cur = cur.Select(f => (byte[])f.Clone()).ToArray();
                    CrashWorkload.Apply(cur, ops[i]);
                    candidates.Add((cur, i == ops.Count - 1));
                }
                int match;
                using (PageEngine engine = PageEngine.Open(dir, new StoreOptions { CommitInterval = null, CommitAfterPages = 0 }))
                {
                    match = candidates.FindIndex(c => Matches(engine, c.Files));
                    Assert.True(match >= 0, $"round {round}: the store matches no operation boundary after step {acked}");
                    List<string> problems = engine.Verify();
                    Assert.True(problems.Count == 0, string.Join("\n", problems));
                }
                FsckReport report = Fsck.Run(dir);
                Assert.True(report.Clean, $"round {round}: {report}");
                if (match > 0 && !candidates[match].StepEnd) midStep++;
                // Continue from a step boundary: replay the rest of step acked+1 is not possible
                // (the child starts at step boundaries), so start a fresh store when mid-step.
                if (match == 0) { model = state; nextStep = acked + 1; }
                else if (candidates[match].StepEnd) { model = candidates[match].Files; nextStep = acked + 2; }
                else
                {
                    Directory.Delete(dir, true);
                    for (int f = 0; f < model.Length; f++) model[f] = [];
                    nextStep = 0;
                }
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (DirectoryNotFoundException) { }
        }
        output.WriteLine($"{rounds} kills, {midStep} of them left the store between two operations of a step");
    }

    private static byte[][] Advance(byte[][] model, int seed, int from, int to)
    {
        byte[][] m = model.Select(f => (byte[])f.Clone()).ToArray();
        for (int step = from; step <= to; step++)
            foreach (CrashOp op in CrashWorkload.Ops(seed, step)) CrashWorkload.Apply(m, op);
        return m;
    }

    private static bool Matches(PageEngine engine, byte[][] model)
    {
        for (int f = 0; f < model.Length; f++)
        {
            Mapping m = engine.OpenMapping((ulong)f + 1);
            if (m.Length != model[f].Length) return false;
            var buf = new byte[m.Length];
            m.Read(0, buf);
            if (!buf.AsSpan().SequenceEqual(model[f])) return false;
        }
        return true;
    }

    // Runs the child until it has synced at least one step and `millis` passed, then SIGKILLs
    // it. Returns the last step it acknowledged.
    private static int RunAndKill(string host, string dir, int seed, int firstStep, int millis, bool background = false)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { host, dir, seed.ToString(), firstStep.ToString() }) psi.ArgumentList.Add(a);
        if (background) psi.ArgumentList.Add("bg");
        using Process child = Process.Start(psi)!;
        int acked = firstStep - 1;
        var gotOne = new ManualResetEventSlim();
        var stderr = new System.Text.StringBuilder();
        child.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.AppendLine(e.Data); };
        child.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.StartsWith("synced ", StringComparison.Ordinal) == true)
            {
                Volatile.Write(ref acked, int.Parse(e.Data.AsSpan(7)));
                gotOne.Set();
            }
        };
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        if (!gotOne.Wait(TimeSpan.FromSeconds(30)))
        {
            child.Kill();
            Assert.Fail("crash host never synced: " + stderr);
        }
        Thread.Sleep(millis);
        if (child.HasExited)
        {
            child.WaitForExit();
            Assert.Fail($"crash host exited by itself ({child.ExitCode}): {stderr}");
        }
        child.Kill(); // SIGKILL
        child.WaitForExit();
        return Volatile.Read(ref acked);
    }
}
