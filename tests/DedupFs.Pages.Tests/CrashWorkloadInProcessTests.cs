// The crash workload run in-process with the invariants checked after every step and a
// reopen every few steps: a failure here is a logic bug, not a crash-recovery one.
using DedupFs.CrashHost;
using DedupFs.Store;

namespace DedupFs.Pages.Tests;

public class CrashWorkloadInProcessTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(-1)]
    public void Workload_keeps_invariants_step_by_step(int seed)
    {
        if (seed < 0) seed = new Random(20261128).Next(1000);  // the crash test's seed
        using var t = new TestEngine(new PageEngineOptions { CacheBytes = 1 << 20, InlineDedup = seed % 2 == 0 });
        var model = new byte[CrashWorkload.Files][];
        for (int f = 0; f < model.Length; f++) model[f] = [];
        for (int step = 0; step < 60; step++)
        {
            foreach (CrashOp op in CrashWorkload.Ops(seed, step))
            {
                CrashWorkload.Apply(t.Engine, op);
                CrashWorkload.Apply(model, op);
                List<string> problems = t.Engine.Verify(checkBytes: false);
                Assert.True(problems.Count == 0, $"step {step} op {op}: " + string.Join("\n", problems));
            }
            t.Engine.Sync();
            if (step % 5 == 4)
            {
                t.Reopen();
                List<string> problems = t.Engine.Verify();
                Assert.True(problems.Count == 0, $"after reopen at step {step}: " + string.Join("\n", problems));
            }
            for (int f = 0; f < model.Length; f++)
                Assert.Equal(model[f], TestEngine.ReadAll(t.Engine.OpenMapping((ulong)f + 1)));
        }
    }
}
