namespace DedupFs.Fuse.Mounting;

/// <summary>
/// Splits a mount(8)-style option string ("ro,allow_other,cache=shared") into the options the
/// FUSE layer understands — the ones mount.fuse3 and fusermount3 know — and the rest, which
/// belong to the filesystem above (returned in order, for it to validate).
/// </summary>
public static class MountOptionParser
{
    /// <summary>Parses <paramref name="options"/> onto a copy of <paramref name="template"/>.</summary>
    /// <exception cref="FuseMountException">A FUSE option with a bad value.</exception>
    public static (FuseMountOptions Options, IReadOnlyList<KeyValuePair<string, string?>> Unknown) Parse(string? options, FuseMountOptions template)
    {
        var unknown = new List<KeyValuePair<string, string?>>();
        bool allowOther = template.AllowOther, defaultPermissions = template.DefaultPermissions, readOnly = template.ReadOnly;
        bool suid = template.Suid, dev = template.Dev, noExec = template.NoExec, noAtime = template.NoAtime;
        string fsName = template.FsName;
        string? subtype = template.Subtype;
        uint? maxRead = template.MaxRead;

        foreach (var item in (options ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = item.IndexOf('=');
            string key = eq < 0 ? item : item[..eq];
            string? value = eq < 0 ? null : item[(eq + 1)..];
            switch (key)
            {
                case "allow_other": allowOther = true; break;
                case "default_permissions": defaultPermissions = true; break;
                case "ro": readOnly = true; break;
                case "rw": readOnly = false; break;
                case "suid": suid = true; break;
                case "nosuid": suid = false; break;
                case "dev": dev = true; break;
                case "nodev": dev = false; break;
                case "exec": noExec = false; break;
                case "noexec": noExec = true; break;
                case "atime" or "relatime" or "strictatime": noAtime = false; break;
                case "noatime": noAtime = true; break;
                case "fsname": fsName = Require(key, value); break;
                case "subtype": subtype = Require(key, value); break;
                case "max_read":
                    maxRead = uint.TryParse(Require(key, value), out uint parsed) && parsed > 0
                        ? parsed
                        : throw new FuseMountException($"max_read={value}: a positive number of bytes is expected");
                    break;
                case "auto" or "noauto" or "user" or "nouser" or "users" or "_netdev" or "defaults" or "nofail":
                    break; // fstab-only words that mount(8) passes along; nothing to do here
                default:
                    unknown.Add(new KeyValuePair<string, string?>(key, value));
                    break;
            }
        }

        var result = new FuseMountOptions
        {
            MountPoint = template.MountPoint,
            FsName = fsName,
            Subtype = subtype,
            AllowOther = allowOther,
            DefaultPermissions = defaultPermissions,
            ReadOnly = readOnly,
            Suid = suid,
            Dev = dev,
            NoExec = noExec,
            NoAtime = noAtime,
            MaxRead = maxRead,
            Method = template.Method,
            FusermountPath = template.FusermountPath,
        };
        result.Validate();
        return (result, unknown);
    }

    private static string Require(string key, string? value) =>
        string.IsNullOrEmpty(value) ? throw new FuseMountException($"option {key} needs a value ({key}=...)") : value;
}
