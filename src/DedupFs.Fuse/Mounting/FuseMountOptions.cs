using System.Text;

namespace DedupFs.Fuse.Mounting;

/// <summary>How a mount is made: directly with mount(2) (root), or through fusermount3.</summary>
public enum MountMethod
{
    /// <summary>mount(2) when running as root, fusermount3 otherwise.</summary>
    Auto,
    Syscall,
    Fusermount,
}

/// <summary>The options of one FUSE mount, in the names mount.fuse3 and fusermount3 use.</summary>
public sealed class FuseMountOptions
{
    public required string MountPoint { get; init; }

    /// <summary>The "device" column of /proc/mounts.</summary>
    public string FsName { get; init; } = "dedupfs";

    /// <summary>Makes the type "fuse.SUBTYPE".</summary>
    public string? Subtype { get; init; } = "dedupfs";

    public bool AllowOther { get; init; }

    /// <summary>Let the kernel check permissions from the attributes we return.</summary>
    public bool DefaultPermissions { get; init; }

    public bool ReadOnly { get; init; }

    /// <summary>FUSE mounts are nosuid,nodev unless asked otherwise, as with fusermount3.</summary>
    public bool Suid { get; init; }

    public bool Dev { get; init; }

    public bool NoExec { get; init; }

    public bool NoAtime { get; init; }

    public uint? MaxRead { get; init; }

    public MountMethod Method { get; init; } = MountMethod.Auto;

    /// <summary>Path of fusermount3, when not on PATH.</summary>
    public string FusermountPath { get; init; } = "fusermount3";

    internal static readonly char[] Forbidden = [',', '\0', '\n'];

    internal void Validate()
    {
        if (string.IsNullOrEmpty(MountPoint))
        {
            throw new FuseMountException("no mount point given");
        }

        foreach (var (name, value) in new[] { ("fsname", FsName), ("subtype", Subtype ?? "") })
        {
            if (value.IndexOfAny(Forbidden) >= 0)
            {
                throw new FuseMountException($"{name} '{value}' may not contain ',' or control characters");
            }
        }
    }

    /// <summary>The option string fusermount3 -o takes (it adds fd, rootmode, user_id, group_id itself).</summary>
    internal string FusermountOptions()
    {
        var sb = new StringBuilder();
        void Add(string option)
        {
            if (sb.Length > 0)
            {
                sb.Append(',');
            }

            sb.Append(option);
        }

        Add(Suid ? "suid" : "nosuid");
        Add(Dev ? "dev" : "nodev");
        if (NoExec) Add("noexec");
        if (NoAtime) Add("noatime");
        if (ReadOnly) Add("ro");
        if (AllowOther) Add("allow_other");
        if (DefaultPermissions) Add("default_permissions");
        if (MaxRead is { } maxRead) Add($"max_read={maxRead}");
        Add($"fsname={FsName}");
        if (Subtype is not null) Add($"subtype={Subtype}");
        return sb.ToString();
    }
}

/// <summary>A mount or unmount that failed, with the reason in words a user can act on.</summary>
public sealed class FuseMountException(string message) : Exception(message);
