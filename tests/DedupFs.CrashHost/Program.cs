// Crash-test child: drives a store through the CrashWorkload from a given step, syncing after
// each step and printing "synced <step>" once the sync returned, until it is killed.
//   DedupFs.CrashHost <store-dir> <seed> <first-step> [bg]
// With "bg" the background committer runs every few milliseconds as well, so a kill can
// land after a commit taken between any two operations, not only at step ends.
using DedupFs.CrashHost;
using DedupFs.Pages;
using DedupFs.Store;

if (args.Length is not (3 or 4))
{
    Console.Error.WriteLine("usage: DedupFs.CrashHost STORE SEED FIRST-STEP [bg]");
    return 2;
}
bool background = args.Length == 4 && args[3] == "bg";
string dir = args[0];
int seed = int.Parse(args[1]);
int step = int.Parse(args[2]);
using var engine = PageEngine.Open(dir,
    background
        ? new StoreOptions { CommitInterval = TimeSpan.FromMilliseconds(3), CommitAfterPages = 16 }
        : new StoreOptions { CommitInterval = null, CommitAfterPages = 0 },
    new PageEngineOptions { CacheBytes = 4 << 20, InlineDedup = seed % 2 == 0 });
Console.Out.Flush();
Console.WriteLine("ready");
try
{
    for (; ; step++)
    {
        foreach (CrashOp op in CrashWorkload.Ops(seed, step)) CrashWorkload.Apply(engine, op);
        engine.Sync();
        Console.WriteLine($"synced {step}");
        Console.Out.Flush();
    }
}
catch (Exception e)
{
    // A failed step must not be committed by Dispose: report and exit as if crashed.
    Console.Error.WriteLine($"crash host failed at step {step}: {e}");
    Console.Error.Flush();
    Environment.Exit(3);
    return 3;
}
