// Merge scanner benchmark (scripts/bench/scanner): how fast one core walks idle data, and
// what the scanner's memory costs per tracked slot.
//
//   dotnet tests/DedupFs.Benchmarks/bin/Release/net10.0/DedupFs.Benchmarks.dll scanner [--pages N] [--dir DIR]
//
// Figures printed:
//   pass 1 (first visits: entries created)          pages/s
//   pass 2 (every unique page enters the unstable index)  pages/s   goal >= 250,000
//   pass 3+ without smart scan (steady state, worst case)  pages/s
//   passes with smart scan (unmerged pages start being skipped)  pages/s visited
//   merge pass over duplicated data (byte compares and slot swaps)  merges/s
//   scan table bytes per tracked slot (goal <= 16), and heap growth per slot after passes 1 and 2
//
// The data is N unique pages in 256 files (written with inline dedup off, committed), so a pass
// never merges: it measures the walk, the volatility filter and the index work, nothing else.
using System.Diagnostics;
using DedupFs.Pages;
using DedupFs.Store;

internal static class ScannerBench
{
    public static void Run(string[] args)
    {
        int pages = 1 << 18;
        string root = Path.GetTempPath();
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--pages") pages = int.Parse(args[++i]);
            else if (args[i] == "--dir") root = args[++i];
        }
        const int P = 4096, Files = 256;
        string dir = Path.Combine(root, "dedupfs-scanbench-" + Guid.NewGuid().ToString("N"));
        Console.WriteLine($"DedupFs merge scanner benchmark: {pages} pages ({(long)pages * P >> 20} MiB) in {Files} files, {Environment.ProcessorCount} cores, dir {dir}");
        try
        {
            var storeOptions = new StoreOptions { CommitInterval = null, CommitAfterPages = 0 };
            using PageEngine engine = PageEngine.Open(dir, storeOptions, new PageEngineOptions { CacheBytes = 64L << 20, InlineDedup = false });
            var block = new byte[32 * P];
            MergeScanner s = engine.Scanner;
            s.SmartScan = false;
            // Warm-up: a daemon scans for hours, so measure tier-1 code, not the JIT's first tiers.
            // A few thousand pages in files of their own, scanned until the JIT settles, then deleted.
            for (ulong f = 0; f < 8; f++)
                for (int p = 0; p < 512; p += 32)
                {
                    Fill(block, -1 - (long)(f * 512 + (ulong)p));
                    engine.OpenMapping(900_000 + f).Write((long)p * P, block);
                }
            for (int i = 0; i < 40; i++)
            {
                s.RunFullScan();
                if (i % 10 == 9) Thread.Sleep(100);   // let the background JIT publish tier-1 code
            }
            for (ulong f = 0; f < 8; f++) engine.DeleteMapping(900_000 + f);
            s.RunFullScan();

            int perFile = pages / Files;
            long blockNo = 0;
            for (ulong f = 1; f <= Files; f++)
            {
                Mapping m = engine.OpenMapping(f);
                for (int p = 0; p < perFile; p += 32)
                {
                    Fill(block, blockNo++);
                    int n = Math.Min(32, perFile - p);
                    m.Write((long)p * P, block.AsSpan(0, n * P));
                }
            }
            engine.Sync();
            long tracked = (long)perFile * Files;

            GC.Collect();
            long heap0 = GC.GetTotalMemory(true);
            double Pass()
            {
                long before = s.Statistics.PagesScanned;
                var sw = Stopwatch.StartNew();
                s.RunFullScan();
                sw.Stop();
                return (s.Statistics.PagesScanned - before) / sw.Elapsed.TotalSeconds;
            }
            double r1 = Pass();
            long heap1 = GC.GetTotalMemory(true);
            double r2 = Pass();
            long heap2 = GC.GetTotalMemory(true);
            var (_, unstableBytes, _, _) = s.MemoryUse;
            long unshared = s.Statistics.PagesUnshared;
            var steady = new List<double>();
            for (int i = 0; i < 3; i++) steady.Add(Pass());
            steady.Sort();
            Console.WriteLine($"pass 1 (first visits)            {r1,12:N0} pages/s");
            Console.WriteLine($"pass 2 (unstable index filled)   {r2,12:N0} pages/s   goal >= 250,000");
            Console.WriteLine($"pass 3-5, no smart scan (median) {steady[1],12:N0} pages/s");

            s.SmartScan = true;
            var sw2 = Stopwatch.StartNew();
            long visits0 = s.Statistics.PagesScanned + s.Statistics.PagesSkipped;
            for (int i = 0; i < 6; i++) s.RunFullScan();
            sw2.Stop();
            long visits = s.Statistics.PagesScanned + s.Statistics.PagesSkipped - visits0;
            Console.WriteLine($"6 passes with smart scan         {visits / sw2.Elapsed.TotalSeconds,12:N0} slots/s  ({s.Statistics.PagesSkipped:N0} skipped)");

            var (tableBytes, _, _, slots) = s.MemoryUse;
            Console.WriteLine($"scan table                       {(double)tableBytes / slots,12:F2} bytes per tracked slot ({slots:N0} slots)   goal <= 16");
            Console.WriteLine($"unstable index                   {(double)unstableBytes / Math.Max(1, unshared),12:F2} bytes per entry after pass 2 ({unshared:N0} entries: this pass's candidates only)");
            Console.WriteLine($"heap growth, pass 1              {(double)(heap1 - heap0) / tracked,12:F2} bytes per tracked slot");
            Console.WriteLine($"heap growth, pass 1+2            {(double)(heap2 - heap0) / tracked,12:F2} bytes per tracked slot (scan table + unstable index of unique data)");

            // Merging: a copy of 16384 pages of the data in fresh files, then the two passes that merge them.
            int dupPages = Math.Min(pages / 2, 16384);
            for (int p = 0; p < dupPages; p++)
            {
                Mapping src = engine.OpenMapping(1 + (ulong)(p / perFile));
                src.Read((long)(p % perFile) * P, block.AsSpan(0, P));
                engine.OpenMapping(10_000 + (ulong)(p / perFile)).Write((long)(p % perFile) * P, block.AsSpan(0, P));
            }
            s.SmartScan = false;
            s.RunFullScan();
            long merged0 = engine.Statistics.PagesMerged;
            var sw3 = Stopwatch.StartNew();
            s.RunFullScan();
            sw3.Stop();
            long merges = engine.Statistics.PagesMerged - merged0;
            Console.WriteLine($"merge pass                       {merges / sw3.Elapsed.TotalSeconds,12:N0} merges/s  ({merges:N0} merges in a {sw3.Elapsed.TotalMilliseconds:F0} ms pass over {tracked + dupPages:N0} pages)");
            s.Run = 1;
            Thread.Sleep(200);
            s.Run = 0;
            Console.WriteLine($"background thread                SCHED_IDLE {(s.SchedIdle ? "granted" : "refused (ThreadPriority.Lowest)")}");
            List<string> problems = engine.Verify(checkBytes: false);
            Console.WriteLine(problems.Count == 0 ? "verify: consistent" : "verify: " + string.Join("; ", problems.Take(5)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static void Fill(byte[] block, long blockNo)
    {
        ulong x = (ulong)blockNo * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;
        Span<ulong> words = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(block.AsSpan());
        for (int i = 0; i < words.Length; i++)
        {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            words[i] = x;
        }
    }
}
