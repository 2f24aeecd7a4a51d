namespace DedupFs.Fuse.Mounting;

/// <summary>Reads /proc/self/mountinfo to tell whether a path is a FUSE mount point.</summary>
public static class MountTable
{
    /// <summary>The fuse mount at exactly <paramref name="path"/>, if there is one.</summary>
    public static MountEntry? FindFuse(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        if (full.Length == 0)
        {
            full = "/";
        }

        MountEntry? found = null;
        foreach (var entry in Read())
        {
            if (entry.MountPoint == full && (entry.FsType == "fuse" || entry.FsType.StartsWith("fuse.", StringComparison.Ordinal) || entry.FsType == "fuseblk"))
            {
                found = entry; // the last one listed is the one on top
            }
        }

        return found;
    }

    public static bool IsFuseMount(string path) => FindFuse(path) is not null;

    public static IEnumerable<MountEntry> Read()
    {
        foreach (var line in File.ReadLines("/proc/self/mountinfo"))
        {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            var parts = line.Split(' ');
            int dash = Array.IndexOf(parts, "-");
            if (parts.Length < 7 || dash < 6 || dash + 2 >= parts.Length)
            {
                continue;
            }

            var device = parts[2].Split(':');
            yield return new MountEntry(
                Unescape(parts[4]),
                parts[dash + 1],
                Unescape(parts[dash + 2]),
                uint.Parse(device[0]),
                uint.Parse(device[1]));
        }
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as \ooo.</summary>
    private static string Unescape(string field)
    {
        if (!field.Contains('\\'))
        {
            return field;
        }

        var bytes = new List<byte>();
        for (int i = 0; i < field.Length; i++)
        {
            if (field[i] == '\\' && i + 3 < field.Length)
            {
                bytes.Add(Convert.ToByte(field.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.Add((byte)field[i]);
            }
        }

        return System.Text.Encoding.UTF8.GetString(bytes.ToArray());
    }
}

/// <summary>One line of mountinfo; <see cref="Minor"/> of a FUSE mount is its connection number under /sys/fs/fuse/connections.</summary>
public sealed record MountEntry(string MountPoint, string FsType, string Source, uint Major, uint Minor);
