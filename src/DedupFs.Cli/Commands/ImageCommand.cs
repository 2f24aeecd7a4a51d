using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using DedupFs.Cli.Mounting;
using DedupFs.Images;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs image import SOURCE DEST (or --layer A --layer B ... DEST): builds an image's root
/// filesystem at DEST, a new directory, ideally inside a DedupFs mount where identical pages of
/// every image imported there are stored once. `dedupfs clone DEST c1` then gives each container
/// its own writable root for free.
/// </summary>
internal static class ImageCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("paths") { Description = "SOURCE DEST, or DEST alone with --layer", Arity = new ArgumentArity(1, 2) };
        var layers = new Option<string[]>("--layer") { Description = "A layer tarball (plain, gzip or zstd); repeat, lowest first", AllowMultipleArgumentsPerToken = false };
        var platform = new Option<string?>("--platform") { Description = "os/arch[/variant] to take from a multi-platform index (default: the host's)" };
        var maxSize = new Option<string>("--max-size") { Description = "Refuse an image that expands beyond this many bytes (K, M, G, T suffixes)", DefaultValueFactory = _ => "64G" };
        var maxRatio = new Option<double>("--max-ratio") { Description = "Refuse a layer that expands more than this many times its compressed size", DefaultValueFactory = _ => 1000 };
        var import = new Command("import", "Import a container image (OCI layout directory or archive, docker save tarball, or layer tarballs) as a directory tree")
        {
            paths, layers, platform, maxSize, maxRatio,
        };
        import.SetAction(result => Run(
            result.GetValue(paths) ?? [], result.GetValue(layers) ?? [], result.GetValue(platform),
            result.GetValue(maxSize)!, result.GetValue(maxRatio), Console.Out, Console.Error));
        return new Command("image", "Container images as directory trees that share their pages") { import };
    }

    internal static int Run(string[] paths, string[] layers, string? platform, string maxSize, double maxRatio, TextWriter output, TextWriter error)
    {
        using var cancel = new CancellationTokenSource();
        // Interrupted or terminated: stop at the next chunk and remove the half-built tree,
        // instead of letting the runtime exit with it left beside DEST.
        Action<PosixSignalContext> stop = context =>
        {
            context.Cancel = true;
            cancel.Cancel();
        };
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, stop);
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, stop);
        using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, stop);
        bool progress = !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error);
        try
        {
            if (layers.Length > 0 && paths.Length != 1) throw new ImageException("with --layer, give only DEST");
            if (layers.Length == 0 && paths.Length != 2) throw new ImageException("give SOURCE and DEST (or --layer ... DEST)");
            string destination = paths[^1];
            var options = new ImportOptions
            {
                MaxSize = ParseSize(maxSize),
                MaxRatio = maxRatio > 0 ? maxRatio : throw new ImageException("--max-ratio must be positive"),
                Cancel = cancel.Token,
                Warning = w => error.WriteLine($"dedupfs: image import: warning: {w}"),
                Progress = progress ? p => error.Write($"\rlayer {p.Layer}/{p.Layers}: {StatsCommand.Human(p.Bytes)}, {p.Entries} entries   ") : null,
            };
            string? parent = Path.GetDirectoryName(Path.GetFullPath(destination).TrimEnd('/'));
            string? mount = parent is null ? null : ControlClient.FindMountRoot(parent);
            long? storedBefore = mount is null ? null : StoredBytes(mount);

            using var source = layers.Length > 0 ? ImageSource.FromLayerFiles(layers) : ImageSource.Open(paths[0], platform is null ? null : Platform.Parse(platform));
            var result = ImageImporter.Import(source, destination, options);
            if (progress) error.WriteLine();
            // Each warning was already said as it happened (result.Warnings sums them up for callers).

            output.WriteLine($"{destination}: {result.Layers} layer(s), {result.Entries} entries, {StatsCommand.Human(result.LogicalBytes)} of file data ({source.Kind})");
            if (mount is not null && storedBefore is long before && StoredBytes(mount) is long after)
            {
                long added = Math.Max(0, after - before);
                string ratio = added == 0
                    ? $"all {StatsCommand.Human(result.LogicalBytes)} were already stored"
                    : "dedup ratio " + (result.LogicalBytes / (double)added).ToString("0.0", CultureInfo.InvariantCulture) + "x";
                output.WriteLine($"newly stored: {StatsCommand.Human(added)} ({ratio})");
            }
            else
            {
                output.WriteLine("not in a DedupFs mount: no deduplication");
            }

            return 0;
        }
        catch (ImageException e)
        {
            if (progress) error.WriteLine();
            error.WriteLine($"dedupfs: image import: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            error.WriteLine("dedupfs: image import: interrupted; nothing was left behind");
            return 130;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"dedupfs: image import: {e.Message}");
            return 1;
        }
    }

    private static long? StoredBytes(string mount)
    {
        try
        {
            using var doc = JsonDocument.Parse(ControlClient.ReadText(mount, "stats.json"));
            var v = doc.RootElement.GetProperty("stored_bytes");
            return v.ValueKind == JsonValueKind.Number ? v.GetInt64() : long.Parse(v.GetString()!, CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is ControlException or JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    internal static long ParseSize(string text)
    {
        string t = text.Trim().ToUpperInvariant().TrimEnd('B').TrimEnd('I');
        int shift = t.Length == 0 ? 0 : t[^1] switch { 'K' => 10, 'M' => 20, 'G' => 30, 'T' => 40, _ => 0 };
        if (shift > 0) t = t[..^1];
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0 || n > (long.MaxValue >> shift))
            throw new ImageException($"--max-size {text}: expected a size such as 512M or 64G");
        return n << shift;
    }
}
