using System.Diagnostics;
using DedupFs.Tests.Support;

namespace DedupFs.Cli.Tests;

/// <summary>
/// The C probes of native/probes (what the managed runtime cannot do directly: fork with
/// MAP_PRIVATE and MAP_SHARED mappings, O_DIRECT with aligned buffers, raw copy_file_range and
/// FICLONE, SEEK_DATA/SEEK_HOLE with fallocate) on a real mount, in both cache modes.
/// scripts/test builds them (make -C native) before the tests run.
/// </summary>
public sealed class ProbeTests
{
    private static string ProbeDirectory()
    {
        for (string? dir = AppContext.BaseDirectory; dir != null; dir = Path.GetDirectoryName(dir))
        {
            if (File.Exists(Path.Combine(dir, "DedupFs.sln"))) return Path.Combine(dir, "native", "build", "probes");
        }

        throw new InvalidOperationException("the repository root (DedupFs.sln) is not above the test assembly");
    }

    private static (int Exit, string Output) RunProbe(string program, string dir)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        start.ArgumentList.Add(dir);
        using var p = Process.Start(start)!;
        p.StandardInput.Close();
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            p.Kill();
            p.WaitForExit();
            return (-1, "did not finish in 90 s");
        }

        p.WaitForExit();
        return (p.ExitCode, output.Result + error.Result);
    }

    [Theory]
    [InlineData("mmap_fork", "cache=shared")]
    [InlineData("mmap_fork", "cache=kernel")]
    [InlineData("odirect", "cache=shared")]
    [InlineData("odirect", "cache=kernel")]
    [InlineData("reflink", "cache=shared")]
    [InlineData("reflink", "cache=kernel")]
    [InlineData("sparse", "cache=shared")]
    [InlineData("sparse", "cache=kernel")]
    public void ProbePassesOnAMount(string probe, string options)
    {
        string program = Path.Combine(ProbeDirectory(), probe);
        Assert.True(File.Exists(program), $"{program} is missing: build the probes with `make -C native probes` (scripts/test does)");
        using var mount = new CliMount(options);
        string dir = mount.PathOf("probe");
        Directory.CreateDirectory(dir);

        var (exit, output) = RunProbe(program, dir);
        Assert.True(exit == 0 && output.StartsWith("ok", StringComparison.Ordinal), $"{probe} on {options}: exit {exit}: {output}");
        // The probe removes what it made.
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }
}
