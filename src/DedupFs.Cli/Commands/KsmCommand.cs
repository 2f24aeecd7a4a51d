using System.CommandLine;
using DedupFs.Cli.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs ksm MOUNTPOINT [--run 0|1|2] [--pages-to-scan N] ...: sets the merge scanner's tunables
/// through MNT/.dedupfs/ksm/NAME (as one writes /sys/kernel/mm/ksm/NAME), then prints every
/// tunable and statistic, "NAME VALUE" per line. The files keep the daemon's rules and errnos
/// (EINVAL, EBUSY), and their permissions decide who may change what.
/// </summary>
internal static class KsmCommand
{
    // Option -> tunable file; the rest (stable_node_chains_prune_millisecs, advisor_*) are written to the files directly.
    private static readonly (string Option, string Name, string Help)[] Tunables =
    [
        ("--run", "run", "0 stop (merges stay), 1 run, 2 unmerge everything and stop"),
        ("--pages-to-scan", "pages_to_scan", "pages looked at per batch"),
        ("--sleep-millisecs", "sleep_millisecs", "pause between batches"),
        ("--max-page-sharing", "max_page_sharing", "most mappers of one merged page (EBUSY while merged pages exist)"),
        ("--use-zero-pages", "use_zero_pages", "1: zero pages become holes"),
        ("--smart-scan", "smart_scan", "1: skip pages that keep failing to merge"),
        ("--merge-across-owners", "merge_across_owners", "0: merge only files of the same owner (EBUSY while merged pages exist)"),
    ];

    public static Command Create()
    {
        var mountPoint = new Argument<string>("mountpoint") { Description = "A DedupFs mount (or any path inside one)" };
        var command = new Command("ksm", "Set and show the merge scanner's tunables and statistics (MNT/.dedupfs/ksm)") { mountPoint };
        var options = Tunables.Select(t => (t.Name, Option: new Option<string?>(t.Option) { Description = t.Help })).ToList();
        foreach (var (_, option) in options) command.Options.Add(option);
        command.SetAction(result => Run(
            result.GetValue(mountPoint)!,
            [.. options.Where(o => result.GetValue(o.Option) != null).Select(o => new KeyValuePair<string, string>(o.Name, result.GetValue(o.Option)!))],
            Console.Out,
            Console.Error));
        return command;
    }

    internal static int Run(string path, IReadOnlyList<KeyValuePair<string, string>> settings, TextWriter output, TextWriter error)
    {
        string? current = null;
        try
        {
            string root = ControlClient.RequireMountRoot(path);
            string dir = Path.Combine(root, ControlClient.DirectoryName, "ksm");
            // run=2 first (it clears the merges that make max_page_sharing busy), run=0|1 last
            // (so a scanner starts with the other tunables in place).
            var ordered = settings.Where(s => s.Key == "run" && s.Value.Trim() == "2")
                .Concat(settings.Where(s => s.Key != "run"))
                .Concat(settings.Where(s => s.Key == "run" && s.Value.Trim() != "2"));
            foreach (var (name, value) in ordered)
            {
                current = $"{name}={value}";
                using var stream = new FileStream(Path.Combine(dir, name), FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
                stream.Write(System.Text.Encoding.ASCII.GetBytes(value + "\n"));
            }

            current = null;
            // Tunables first, then statistics, each in the scanner's order.
            foreach (string name in DedupFs.Pages.MergeScanner.TunableNames.Concat(DedupFs.Pages.MergeScanner.StatisticNames))
            {
                string file = Path.Combine(dir, name);
                if (!File.Exists(file)) continue;   // an older daemon with fewer files
                output.WriteLine($"{name} {File.ReadAllText(file).TrimEnd('\n')}");
            }

            return 0;
        }
        catch (ControlException e)
        {
            error.WriteLine($"dedupfs: ksm: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine(current != null
                ? $"dedupfs: ksm: cannot set {current}: {Reason(e)}"
                : $"dedupfs: ksm: {e.Message}");
            return 1;
        }
    }

    // .NET words errno from write(2) with the path appended; the tunable's name says enough.
    private static string Reason(Exception e)
    {
        if (e is UnauthorizedAccessException) return "permission denied (EACCES)";
        string m = e.Message;
        int cut = m.IndexOf(" : '", StringComparison.Ordinal);
        if (cut < 0) cut = m.IndexOf(" '", StringComparison.Ordinal);
        string reason = cut > 0 ? m[..cut] : m;
        return (e.HResult & 0xFFFF) switch
        {
            16 => reason + " (EBUSY: pages the scanner merged are still shared; set --run 2 first)",
            22 => reason + " (EINVAL)",
            _ => reason,
        };
    }
}
