using System.CommandLine;
using System.Text.Json;
using DedupFs.Cli.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>dedupfs shares FILE [--json]: which other files share pages with FILE, and how many.</summary>
internal static class SharesCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A regular file inside a DedupFs mount" };
        var json = new Option<bool>("--json") { Description = "The daemon's answer as JSON" };
        var command = new Command("shares", "List the files that share pages with a file") { file, json };
        command.SetAction(result => Run(result.GetValue(file)!, result.GetValue(json), Console.Out, Console.Error));
        return command;
    }

    internal static int Run(string file, bool json, TextWriter output, TextWriter error)
    {
        try
        {
            string root = ControlClient.RequireMountRoot(file);
            string answer = ControlClient.Request(root, "shares", ControlClient.Relative(root, file));
            if (json)
            {
                output.WriteLine(answer.TrimEnd());
                return 0;
            }

            using var doc = JsonDocument.Parse(answer);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind == JsonValueKind.Array)
                {
                    output.WriteLine($"{property.Name}:");
                    foreach (var item in property.Value.EnumerateArray())
                    {
                        output.WriteLine("  " + string.Join("  ", item.ValueKind == JsonValueKind.Object
                            ? item.EnumerateObject().Select(p => $"{p.Name}={p.Value}")
                            : [item.ToString()]));
                    }
                }
                else
                {
                    // JSON spellings (true, not .NET's True) for the merge figures' booleans.
                    output.WriteLine($"{property.Name}: {(property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : property.Value.GetRawText())}");
                }
            }

            return 0;
        }
        catch (ControlException e)
        {
            error.WriteLine($"dedupfs: shares: {e.Message}");
            return 1;
        }
        catch (JsonException e)
        {
            error.WriteLine($"dedupfs: shares: the daemon's answer is not JSON: {e.Message}");
            return 1;
        }
    }
}
