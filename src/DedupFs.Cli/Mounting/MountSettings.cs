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
    public bool Debug { get; init; }

    /// <summary>The options DedupFs itself takes in -o, with their meaning (for --help).</summary>
    public const string OptionsHelp =
        "cache=shared|kernel (default shared: each distinct page cached once, in the daemon), " +
        "inline_dedup=on|off (default on), cache_size=SIZE (daemon page cache, e.g. 512M; default 1/8 of RAM), " +
        "commit=SECONDS (group commit interval, default 5), and the FUSE options ro, rw, allow_other, " +
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
                _ => throw new ArgumentException($"unknown mount option '{key}{(value is null ? "" : "=" + value)}' (see dedupfs mount --help)"),
            };
        }

        return settings;
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
            Fuse.ReadOnly ? "ro" : "rw",
            Fuse.Suid ? "suid" : "nosuid",
            Fuse.Dev ? "dev" : "nodev",
            Fuse.NoExec ? "noexec" : "exec",
            Fuse.NoAtime ? "noatime" : "relatime",
        };
        if (Fuse.AllowOther) parts.Add("allow_other");
        if (Fuse.FsName != Store) parts.Add("fsname=" + Fuse.FsName);
        if (Fuse.Subtype is { } sub && sub != "dedupfs") parts.Add("subtype=" + sub);
        if (Fuse.MaxRead is { } mr) parts.Add("max_read=" + mr.ToString(CultureInfo.InvariantCulture));
        return string.Join(',', parts);
    }
}
