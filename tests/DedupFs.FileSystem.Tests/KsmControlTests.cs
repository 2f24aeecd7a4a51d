// The merge scanner through a real mount: MNT/.dedupfs/ksm/ files (as /sys/kernel/mm/ksm),
// stats.json, and per-file advice with the user.dedupfs.merge xattr. Waits are polls on the
// scanner's own counters with a deadline, never fixed sleeps.
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DedupFs.FileSystem.Tests.Support;
using static DedupFs.Tests.Support.Posix;

namespace DedupFs.FileSystem.Tests;

public sealed class KsmControlTests : IDisposable
{
    private const int Pages = 16;
    private DedupMount _m = new(CacheMode.Shared);

    public void Dispose() => _m.Dispose();

    private string P(string relative) => _m[relative];

    private string Ksm(string name) => File.ReadAllText(P(".dedupfs/ksm/" + name));

    private long KsmNumber(string name) => long.Parse(Ksm(name).Trim(), CultureInfo.InvariantCulture);

    // A write to a control file as a shell's echo does it: 0 or the errno.
    private int WriteControl(string file, string text)
    {
        int fd = Open(P(".dedupfs/" + file), OWronly);
        if (fd < 0) return -fd;
        try
        {
            long n = Write(fd, Encoding.ASCII.GetBytes(text));
            return n < 0 ? (int)-n : 0;
        }
        finally
        {
            Close(fd);
        }
    }

    // The scanner thread runs at SCHED_IDLE: on a busy machine it gets the CPU only when nothing
    // else wants it, so the deadline is generous; it only bounds a scanner that never runs.
    private void WaitFor(Func<bool> condition, string what, int seconds = 120)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(seconds)) Assert.Fail($"timed out waiting for {what}");
            Thread.Sleep(10);
        }
    }

    private static byte[] Random(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private string Xattr(string path) => GetXattr(P(path), DedupFileSystem.MergeXattr, out int errno) is { } v ? Encoding.ASCII.GetString(v) : $"errno {errno}";

    private JsonElement Shares(string path)
    {
        Assert.Equal(0, _m.Fs.SharesOf(path, out string json));
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    [Fact]
    public void Ksm_directory_lists_every_tunable_and_statistic_with_kernel_rules()
    {
        Assert.Contains("ksm", Directory.GetDirectories(P(".dedupfs")).Select(Path.GetFileName));
        string[] files = [.. Directory.GetFiles(P(".dedupfs/ksm")).Select(f => Path.GetFileName(f)!).Order(StringComparer.Ordinal)];
        Assert.Equal(ControlFiles.KsmTunableNames.Concat(ControlFiles.KsmStatisticNames).Order(StringComparer.Ordinal), files);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(P(".dedupfs/ksm/run")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead, File.GetUnixFileMode(P(".dedupfs/ksm/full_scans")));

        Assert.Equal("0\n", Ksm("run"));   // stopped by default, like the kernel
        Assert.Equal("256\n", Ksm("max_page_sharing"));
        Assert.Equal(0, WriteControl("ksm/pages_to_scan", "5000\n"));
        Assert.Equal("5000\n", Ksm("pages_to_scan"));
        Assert.Equal(EINVAL, WriteControl("ksm/max_page_sharing", "lots"));
        Assert.Equal(EINVAL, WriteControl("ksm/max_page_sharing", "1"));
        Assert.Equal(EINVAL, WriteControl("ksm/run", "3"));
        Assert.Equal(EACCES, WriteControl("ksm/pages_sharing", "1"));
        Assert.Equal("256\n", Ksm("max_page_sharing"));

        // stats.json: every scanner statistic and tunable by its kernel name, each once.
        string text = File.ReadAllText(P(".dedupfs/stats.json"));
        using var json = JsonDocument.Parse(text);
        var keys = json.RootElement.EnumerateObject().Select(p => p.Name).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        foreach (string name in ControlFiles.KsmTunableNames.Concat(ControlFiles.KsmStatisticNames).Concat(ControlFiles.StatisticNames))
            Assert.Contains(name, keys);
        Assert.Equal(5000, json.RootElement.GetProperty("pages_to_scan").GetInt64());
        Assert.Equal("[none] scan-time", json.RootElement.GetProperty("advisor_mode").GetString());
    }

    [Fact]
    public void Merge_advice_is_inherited_from_directories_and_validated()
    {
        Directory.CreateDirectory(P("private"));
        Assert.Equal(EINVAL, SetXattr(P("private"), DedupFileSystem.MergeXattr, "yes"u8.ToArray()));
        Assert.Equal(0, SetXattr(P("private"), DedupFileSystem.MergeXattr, "0"u8.ToArray()));
        Directory.CreateDirectory(P("private/sub"));
        File.WriteAllText(P("private/sub/f"), "x");
        File.WriteAllText(P("plain"), "x");
        Assert.Equal("0", Xattr("private/sub"));
        Assert.Equal("0", Xattr("private/sub/f"));
        Assert.Equal($"errno {ENODATA}", Xattr("plain"));
        Assert.False(Shares("private/sub/f").GetProperty("mergeable").GetBoolean());
        Assert.True(Shares("plain").GetProperty("mergeable").GetBoolean());

        // Advice survives a remount (it is an ordinary xattr the engine reads for every mapping it opens).
        _m.Remount();
        Assert.False(Shares("private/sub/f").GetProperty("mergeable").GetBoolean());
        Assert.Equal(0, SetXattr(P("private/sub/f"), DedupFileSystem.MergeXattr, "1"u8.ToArray()));
        Assert.True(Shares("private/sub/f").GetProperty("mergeable").GetBoolean());
    }

    [Fact]
    public void Scanner_merges_identical_files_except_unmergeable_ones_and_run_2_unmerges()
    {
        const int n = 4;
        Assert.Equal(0, WriteControl("inline_dedup", "0"));   // only the scanner may share these pages
        byte[] data = Random(Pages * 4096, 42);
        for (int i = 0; i < n; i++) File.WriteAllBytes(P($"f{i}"), data);
        Directory.CreateDirectory(P("private"));
        Assert.Equal(0, SetXattr(P("private"), DedupFileSystem.MergeXattr, "0"u8.ToArray()));
        File.WriteAllBytes(P("private/twin"), data);   // inherits "0": identical, but never merged
        Assert.Equal(0, KsmNumber("pages_sharing"));

        long scans = KsmNumber("full_scans");
        Assert.Equal(0, WriteControl("ksm/sleep_millisecs", "1"));
        Assert.Equal(0, WriteControl("ksm/pages_to_scan", "1000"));
        Assert.Equal(0, WriteControl("ksm/run", "1"));
        // Pass 1 sees every page for the first time (volatile), pass 2 merges.
        WaitFor(() => KsmNumber("full_scans") >= scans + 2, "two full scans");
        Assert.Equal((n - 1) * Pages, KsmNumber("pages_sharing"));
        Assert.Equal(Pages, KsmNumber("pages_shared"));
        Assert.Equal(0, Shares("private/twin").GetProperty("merged_slots").GetInt64());
        JsonElement f0 = Shares("f0");
        Assert.True(f0.GetProperty("mergeable").GetBoolean());
        Assert.Equal(Pages, f0.GetProperty("merged_slots").GetInt64());
        Assert.True(f0.GetProperty("profit").GetInt64() > 0);

        // max_page_sharing cannot change under merged pages (EBUSY), as the kernel's.
        Assert.Equal(EBUSY, WriteControl("ksm/max_page_sharing", "128"));

        // MADV_UNMERGEABLE on an open file: its pages become private at once, and stay so.
        using (var open = new FileStream(P($"f{n - 1}"), FileMode.Open, FileAccess.Read))
        {
            Assert.Equal(0, SetXattr(P($"f{n - 1}"), DedupFileSystem.MergeXattr, "0"u8.ToArray()));
            Assert.Equal((n - 2) * Pages, KsmNumber("pages_sharing"));
            scans = KsmNumber("full_scans");
            WaitFor(() => KsmNumber("full_scans") >= scans + 2, "two more full scans");
            Assert.Equal((n - 2) * Pages, KsmNumber("pages_sharing"));
            Assert.Equal(0, Shares($"f{n - 1}").GetProperty("merged_slots").GetInt64());
        }

        // run = 2: everything private again, the scanner stopped, contents unchanged.
        Assert.Equal(0, WriteControl("ksm/run", "2"));
        Assert.Equal("2\n", Ksm("run"));
        Assert.Equal(0, KsmNumber("pages_sharing"));
        Assert.Equal(0, KsmNumber("pages_shared"));
        for (int i = 0; i < n; i++) Assert.Equal(data, File.ReadAllBytes(P($"f{i}")));
        Assert.Equal(data, File.ReadAllBytes(P("private/twin")));
        Assert.Equal(0, WriteControl("ksm/max_page_sharing", "128"));
        Assert.Equal("128\n", Ksm("max_page_sharing"));
    }

    [Fact]
    public void With_mergeable_off_only_files_advised_mergeable_merge()
    {
        _m.Dispose();
        _m = new DedupMount(CacheMode.Shared, mergeableByDefault: false);
        Assert.Equal(0, WriteControl("inline_dedup", "0"));
        byte[] data = Random(Pages * 4096, 7);
        File.WriteAllBytes(P("plain1"), data);
        File.WriteAllBytes(P("plain2"), data);
        Directory.CreateDirectory(P("opted"));
        Assert.Equal(0, SetXattr(P("opted"), DedupFileSystem.MergeXattr, "1"u8.ToArray()));
        File.WriteAllBytes(P("opted/a"), data);
        File.WriteAllBytes(P("opted/b"), data);
        Assert.False(Shares("plain1").GetProperty("mergeable").GetBoolean());

        Assert.Equal(0, WriteControl("ksm/sleep_millisecs", "1"));
        Assert.Equal(0, WriteControl("ksm/pages_to_scan", "1000"));
        long scans = KsmNumber("full_scans");
        Assert.Equal(0, WriteControl("ksm/run", "1"));
        WaitFor(() => KsmNumber("full_scans") >= scans + 2, "two full scans");
        Assert.Equal(Pages, KsmNumber("pages_sharing"));   // opted/a and opted/b only
        Assert.Equal(Pages, Shares("opted/a").GetProperty("merged_slots").GetInt64());
        Assert.Equal(0, Shares("plain1").GetProperty("merged_slots").GetInt64());

        // Without its advice a file falls back to the mount's default (off): unmerged at once.
        Assert.Equal(0, RemoveXattr(P("opted/b"), DedupFileSystem.MergeXattr));
        Assert.Equal(0, KsmNumber("pages_sharing"));
        Assert.Equal(0, WriteControl("ksm/run", "0"));
        Assert.Equal(data, File.ReadAllBytes(P("opted/a")));
        Assert.Equal(data, File.ReadAllBytes(P("opted/b")));
    }
}
