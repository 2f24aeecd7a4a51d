using System.Diagnostics;
using System.Text.Json;
using DedupFs.Tests.Support;

namespace DedupFs.Cli.Tests;

/// <summary>The merge scanner from the command line: mount options and `dedupfs ksm`.</summary>
public sealed class KsmCommandTests
{
    private static Dictionary<string, string> Values(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)).ToDictionary(p => p[0], p => p[1]);

    [Fact]
    public void MountOptionsSetTheTunablesAndKsmSetsAndPrintsThem()
    {
        using var mount = new CliMount("ksm_run=1,pages_to_scan=5000,sleep_millisecs=5,mergeable=on");
        var (exit, output, error) = Dedupfs.Run("ksm", mount.MountPoint);
        Assert.True(exit == 0, error);
        var values = Values(output);
        Assert.Equal("1", values["run"]);
        Assert.Equal("5000", values["pages_to_scan"]);
        Assert.Equal("5", values["sleep_millisecs"]);
        foreach (string name in DedupFs.Pages.MergeScanner.TunableNames.Concat(DedupFs.Pages.MergeScanner.StatisticNames))
            Assert.Contains(name, values.Keys);

        // The scanner really runs: full_scans advances (polled with a deadline).
        var clock = Stopwatch.StartNew();
        while (long.Parse(File.ReadAllText(mount.PathOf(".dedupfs/ksm/full_scans"))) < 2)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), "the scanner made no full scans in 120 s");
            Thread.Sleep(20);
        }

        (exit, output, error) = Dedupfs.Run("ksm", mount.MountPoint, "--run", "0", "--max-page-sharing", "64", "--smart-scan", "0", "--use-zero-pages", "1");
        Assert.True(exit == 0, error);
        values = Values(output);
        Assert.Equal("0", values["run"]);
        Assert.Equal("64", values["max_page_sharing"]);
        Assert.Equal("0", values["smart_scan"]);
        Assert.Equal("1", values["use_zero_pages"]);

        (exit, output, error) = Dedupfs.Run("ksm", mount.MountPoint, "--run", "3");
        Assert.NotEqual(0, exit);
        Assert.Equal("", output);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.StartsWith("dedupfs: ksm: cannot set run=3", error);

        (exit, output, error) = Dedupfs.Run("stats", mount.MountPoint, "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(64, json.RootElement.GetProperty("max_page_sharing").GetInt64());
        Assert.True(json.RootElement.GetProperty("full_scans").GetInt64() >= 2);

        mount.Unmount();
    }
}
