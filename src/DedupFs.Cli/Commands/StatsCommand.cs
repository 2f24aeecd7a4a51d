using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DedupFs.Cli.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>dedupfs stats MOUNTPOINT [--json]: the daemon's statistics (MNT/.dedupfs/stats.json).</summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var mountPoint = new Argument<string>("mountpoint") { Description = "A DedupFs mount (or any path inside one)" };
        var json = new Option<bool>("--json") { Description = "One JSON object, keyed by statistic name" };
        var command = new Command("stats", "Show what is stored, shared and cached") { mountPoint, json };
        command.SetAction(result => Run(result.GetValue(mountPoint)!, result.GetValue(json), Console.Out, Console.Error));
        return command;
    }

    internal static int Run(string path, bool json, TextWriter output, TextWriter error)
    {
        try
        {
            string root = ControlClient.RequireMountRoot(path);
            string text = ControlClient.ReadText(root, "stats.json");
            if (json)
            {
                output.WriteLine(text.TrimEnd());
                return 0;
            }

            using var doc = JsonDocument.Parse(text);
            var rows = doc.RootElement.EnumerateObject().ToList();
            int width = rows.Count == 0 ? 0 : rows.Max(r => r.Name.Length);
            output.WriteLine($"{root}:");
            foreach (var row in rows)
            {
                output.WriteLine($"  {row.Name.PadRight(width)}  {Format(row.Name, row.Value)}");
            }

            return 0;
        }
        catch (ControlException e)
        {
            error.WriteLine($"dedupfs: stats: {e.Message}");
            return 1;
        }
        catch (JsonException e)
        {
            error.WriteLine($"dedupfs: stats: the daemon's stats.json is not JSON: {e.Message}");
            return 1;
        }
    }

    // Byte counts also in binary units; everything else as the daemon wrote it.
    private static string Format(string name, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Number && name.EndsWith("_bytes", StringComparison.Ordinal) && value.TryGetInt64(out long bytes))
            return $"{bytes.ToString(CultureInfo.InvariantCulture)} ({Human(bytes)})";
        return value.ToString();
    }

    internal static string Human(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        double v = bytes;
        int u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return u == 0 ? $"{bytes} B" : v.ToString("0.0", CultureInfo.InvariantCulture) + " " + units[u];
    }
}
