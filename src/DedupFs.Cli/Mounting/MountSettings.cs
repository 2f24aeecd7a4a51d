using System.Globalization;
using DedupFs.FileSystem;
using DedupFs.Fuse.Mounting;

namespace DedupFs.Cli.Mounting;

/// <summary>
/// Everything `dedupfs mount` was asked for, parsed and checked before anything is started, so a
/// wrong option is one clear line and no daemon. The -o string is split the way mount(8) and
/// mount.fuse3 do: FUSE's own options go to <see cref="MountOptionParser"/>, DedupFs's own are
/// parsed here, and anything else is an error that names it.
/// </summary>
internal sealed record MountSettings
{
    public required string Store { get; init; }
    public required string MountPoint { get; init; }
    public required FuseMountOptions Fuse { get; init; }
    public CacheMode Cache { get; init; } = CacheMode.Shared;
    public bool InlineDedup { get; init; } = true;
    public long CacheBytes { get; init; } = DefaultCacheBytes();
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromSeconds(5);
    public int Workers { get; init; }

    /// <summary>mergeable=on|off: whether files without a user.dedupfs.merge xattr may be merged.</summary>
    public bool Mergeable { get; init; } = true;

    /// <summary>Merge scanner tunables to set before mounting, by kernel name (ksm_run= becomes "run"), in the
    /// order given; the daemon sets run last, once the others are in place.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Ksm { get; init; } = [];
    public bool Debug { get; init; }

    /// <summary>The options DedupFs itself takes in -o, with their meaning (for --help).</summary>
    public const string OptionsHelp =
        "cache=shared|kernel (default shared: each distinct page cached once, in the daemon), " +
        "inline_dedup=on|off (default on), cache_size=SIZE (daemon page cache, e.g. 512M; default 1/8 of RAM), " +
        "commit=SECONDS (group commit interval, default 5), mergeable=on|off (default on: files without a " +
        "user.dedupfs.merge xattr may be merged by the merge scanner), ksm_run=0|1|2 (default 0) and every merge " +
        "scanner tunable by its name (pages_to_scan=, sleep_millisecs=, max_page_sharing=, use_zero_pages=, " +
        "smart_scan=, merge_across_owners=, stable_node_chains_prune_millisecs=, advisor_*=), and the FUSE options ro, rw, allow_other, " +
        "suid, nosuid, dev, nodev, exec, noexec, atime, noatime, fsname=, subtype=, max_read=";

    /// <exception cref="ArgumentException">A bad option, with a message for the user.</exception>
    public static MountSettings Parse(string store, string mountPoint, string? options, int workers, bool debug)
    {
        string fullStore = Path.GetFullPath(store);
        string fullMount = Path.GetFullPath(mountPoint);
        if (fullMount == "/") throw new ArgumentException("refusing to mount over /");
        if (IsInside(fullStore, fullMount) || IsInside(fullMount, fullStore))
            throw new ArgumentException($"the store ({fullStore}) and the mount point ({fullMount}) must not contain each other");

        // The store path is the mount's source in /proc/mounts, like a block device for ext4: it
        // is how `dedupfs umount` finds the daemon's store to wait for, and what df shows.
        var template = new FuseMountOptions
        {
            MountPoint = fullMount,
            FsName = fullStore,
            Subtype = "dedupfs",
            DefaultPermissions = true,
        };
        FuseMountOptions fuse;
        IReadOnlyList<KeyValuePair<string, string?>> rest;
        try
        {
            (fuse, rest) = MountOptionParser.Parse(options, template);
        }
        catch (FuseMountException e)
        {
            throw new ArgumentException(e.Message);
        }

        var settings = new MountSettings { Store = fullStore, MountPoint = fullMount, Fuse = fuse, Workers = workers, Debug = debug };
        foreach (var (key, value) in rest)
        {
            settings = key switch
            {
                "cache" => settings with
                {
                    Cache = value switch
                    {
                        "shared" => CacheMode.Shared,
                        "kernel" => CacheMode.Kernel,
                        _ => throw new ArgumentException($"cache={value}: expected cache=shared or cache=kernel"),
                    },
                },
                "inline_dedup" => settings with { InlineDedup = ParseSwitch(key, value) },
                "cache_size" => settings with { CacheBytes = ParseSize(key, value) },
                "commit" => settings with { CommitInterval = ParseSeconds(key, value) },
                "mergeable" => settings with { Mergeable = ParseSwitch(key, value) },
                "ksm_run" => settings with { Ksm = [.. settings.Ksm, new("run", CheckTunable(key, "run", value))] },
                _ when key != "run" && DedupFs.Pages.MergeScanner.TunableNames.Contains(key) =>
                    settings with { Ksm = [.. settings.Ksm, new(key, CheckTunable(key, key, value))] },
                _ => throw new ArgumentException($"unknown mount option '{key}{(value is null ? "" : "=" + value)}' (see dedupfs mount --help)"),
            };
        }

        return settings;
    }

    // The scanner's own rules (MergeScanner.Set) as far as they can be checked without a store, so
    // a typo is an error before anything starts; the daemon still reports what the scanner refuses.
    private static string CheckTunable(string option, string name, string? value)
    {
        if (value is null) throw new ArgumentException($"{option} needs a value, e.g. {option}={(name == "run" ? "1" : "100")}");
        if (name == "advisor_mode")
            return value is "none" or "scan-time" ? value : throw new ArgumentException($"{option}={value}: expected none or scan-time");
        bool boolean = name is "use_zero_pages" or "smart_scan" or "merge_across_owners";
        if (boolean && value is "on" or "off") value = value == "on" ? "1" : "0";
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new ArgumentException($"{option}={value}: expected a whole number");
        (int min, int max, string what) = name switch
        {
            "run" => (0, 2, "0 (stop), 1 (run) or 2 (unmerge and stop)"),
            _ when boolean => (0, 1, "0 or 1"),
            "max_page_sharing" => (2, int.MaxValue, "at least 2"),
            "advisor_max_cpu" => (1, 100, "1 to 100"),
            "advisor_min_pages_to_scan" or "advisor_max_pages_to_scan" or "advisor_target_scan_time" => (1, int.MaxValue, "at least 1"),
            _ => (0, int.MaxValue, "a whole number"),
        };
        if (n < min || n > max) throw new ArgumentException($"{option}={value}: expected {what}");
        return n.ToString(CultureInfo.InvariantCulture);
    }

    private static bool IsInside(string path, string dir) =>
        path == dir || path.StartsWith(dir.TrimEnd('/') + "/", StringComparison.Ordinal);

    internal static bool ParseSwitch(string key, string? value) => value switch
    {
        null or "on" or "1" or "yes" or "true" => true,
        "off" or "0" or "no" or "false" => false,
        _ => throw new ArgumentException($"{key}={value}: expected on or off"),
    };

    internal static long ParseSize(string key, string? value)
    {
        if (string.IsNullOrEmpty(value)) throw new ArgumentException($"{key} needs a size, e.g. {key}=512M");
        long unit = 1;
        string digits = value;
        char last = char.ToUpperInvariant(value[^1]);
        int shift = last switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        if (shift > 0)
        {
            unit = 1L << shift;
            digits = value[..^1];
        }

        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0 || n > long.MaxValue / unit)
            throw new ArgumentException($"{key}={value}: expected a size such as 268435456, 256M or 2G");
        long bytes = n * unit;
        if (bytes < 4L << 20) throw new ArgumentException($"{key}={value}: at least 4M");
        return bytes;
    }

    private static TimeSpan ParseSeconds(string key, string? value)
    {
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || !(s > 0) || s > 86400)
            throw new ArgumentException($"{key}={value}: expected seconds between group commits (0 < N <= 86400), e.g. {key}=5");
        return TimeSpan.FromSeconds(s);
    }

    /// <summary>An eighth of the machine's memory, between 256 MiB and 8 GiB: ZFS's ARC and the
    /// kernel take far more, but the daemon shares the machine with what it serves.</summary>
    private static long DefaultCacheBytes()
    {
        long total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Math.Clamp(total / 8, 256L << 20, 8L << 30);
    }

    /// <summary>The options as a -o string again, for the daemon's command line.</summary>
    public string ToOptionString()
    {
        var parts = new List<string>
        {
            "cache=" + (Cache == CacheMode.Shared ? "shared" : "kernel"),
            "inline_dedup=" + (InlineDedup ? "on" : "off"),
            "cache_size=" + CacheBytes.ToString(CultureInfo.InvariantCulture),
            "commit=" + CommitInterval.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            "mergeable=" + (Mergeable ? "on" : "off"),
            Fuse.ReadOnly ? "ro" : "rw",
            Fuse.Suid ? "suid" : "nosuid",
            Fuse.Dev ? "dev" : "nodev",
            Fuse.NoExec ? "noexec" : "exec",
            Fuse.NoAtime ? "noatime" : "relatime",
        };
        foreach (var (name, value) in Ksm) parts.Add((name == "run" ? "ksm_run" : name) + "=" + value);
        if (Fuse.AllowOther) parts.Add("allow_other");
        if (Fuse.FsName != Store) parts.Add("fsname=" + Fuse.FsName);
        if (Fuse.Subtype is { } sub && sub != "dedupfs") parts.Add("subtype=" + sub);
        if (Fuse.MaxRead is { } mr) parts.Add("max_read=" + mr.ToString(CultureInfo.InvariantCulture));
        return string.Join(',', parts);
    }
}
