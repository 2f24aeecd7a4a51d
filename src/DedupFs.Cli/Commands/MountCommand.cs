using System.CommandLine;
using System.Diagnostics;
using DedupFs.Cli.Mounting;
using DedupFs.Fuse.Mounting;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs mount [--store DIR] MOUNTPOINT [-o OPTIONS] [--foreground] [--debug].
/// Without --foreground the command starts the daemon detached (its own session, standard input
/// /dev/null, output appended to STORE/dedupfs.log) and returns once the mount answers, or fails
/// with the daemon's own words from the log. mount.fuse3's form, `dedupfs STORE MOUNTPOINT -o
/// OPTIONS`, is accepted too (Program.cs), so an fstab line `STORE MNT fuse.dedupfs OPTS 0 0` works.
/// </summary>
internal static class MountCommand
{
    /// <summary>Set in the detached daemon's environment: run in the foreground, the log is stderr.</summary>
    private const string DaemonVariable = "DEDUPFS_DAEMON";
    public const string LogFileName = "dedupfs.log";

    public static Command Create()
    {
        var mountPoint = new Argument<string>("mountpoint") { Description = "Where to mount (created if missing)" };
        var store = new Option<string?>("--store", "-s") { Description = "The store directory (created if missing); default ${XDG_DATA_HOME:-~/.local/share}/dedupfs/default" };
        var options = new Option<string[]>("--options", "-o") { Description = "Mount options, comma-separated: " + MountSettings.OptionsHelp, AllowMultipleArgumentsPerToken = false };
        var foreground = new Option<bool>("--foreground", "-f") { Description = "Stay in the foreground and log to standard error" };
        var debug = new Option<bool>("--debug", "-d") { Description = "Log every FUSE request (implies --foreground)" };
        var workers = new Option<int>("--workers") { Description = "FUSE worker threads (default: 2 per core, 2 to 8)" };
        var command = new Command("mount", "Mount a DedupFs store") { mountPoint, store, options, foreground, debug, workers };
        command.SetAction(result => Run(
            result.GetValue(store) ?? DefaultStore(),
            result.GetValue(mountPoint)!,
            string.Join(',', result.GetValue(options) ?? []),
            result.GetValue(foreground) || result.GetValue(debug),
            result.GetValue(debug),
            result.GetValue(workers)));
        return command;
    }

    public static string DefaultStore()
    {
        string? data = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (string.IsNullOrEmpty(data))
            data = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(data, "dedupfs", "default");
    }

    public static int Run(string store, string mountPoint, string? options, bool foreground, bool debug, int workers)
    {
        MountSettings settings;
        try
        {
            if (workers < 0) throw new ArgumentException("--workers takes a positive number");
            settings = MountSettings.Parse(store, mountPoint, options, workers, debug);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"dedupfs: mount: {e.Message}");
            return 2;
        }

        bool daemon = Environment.GetEnvironmentVariable(DaemonVariable) == "1";
        if (!daemon)
        {
            string? problem = Prepare(settings);
            if (problem != null)
            {
                Console.Error.WriteLine($"dedupfs: mount: {problem}");
                return 1;
            }
        }

        if (foreground || daemon) return MountDaemon.Run(settings, Console.Error);
        return StartDetached(settings);
    }

    // Checks that can be answered before a daemon exists, so their errors reach the terminal.
    private static string? Prepare(MountSettings settings)
    {
        if (MountTable.FindFuse(settings.MountPoint) is { } existing && existing.MountPoint == settings.MountPoint)
            return $"{settings.MountPoint} is already a FUSE mount (of {existing.Source}); unmount it first";
        try
        {
            if (!Directory.Exists(settings.MountPoint))
            {
                Directory.CreateDirectory(settings.MountPoint);
                Console.Error.WriteLine($"dedupfs: created mount point {settings.MountPoint}");
            }

            Directory.CreateDirectory(settings.Store);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }

        return null;
    }

    private static int StartDetached(MountSettings settings)
    {
        string log = Path.Combine(settings.Store, LogFileName);
        long logStart = File.Exists(log) ? new FileInfo(log).Length : 0;

        // setsid: the daemon leaves our session and terminal, so a closed terminal or a Ctrl-C
        // here never reaches it. sh sets up its standard streams and then becomes it (exec), so
        // the pid we watch is the daemon's and nothing holds our own output open.
        var start = new ProcessStartInfo("setsid") { UseShellExecute = false };
        start.ArgumentList.Add("/bin/sh");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add("exec \"$0\" \"$@\" </dev/null >>\"$DEDUPFS_LOG\" 2>&1");
        foreach (string arg in SelfCommand()) start.ArgumentList.Add(arg);
        start.ArgumentList.Add("mount");
        start.ArgumentList.Add("--store");
        start.ArgumentList.Add(settings.Store);
        start.ArgumentList.Add(settings.MountPoint);
        start.ArgumentList.Add("-o");
        start.ArgumentList.Add(settings.ToOptionString());
        if (settings.Workers > 0)
        {
            start.ArgumentList.Add("--workers");
            start.ArgumentList.Add(settings.Workers.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        start.Environment[DaemonVariable] = "1";
        start.Environment["DEDUPFS_LOG"] = log;

        using Process child = Process.Start(start) ?? throw new InvalidOperationException("could not start the daemon");
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            if (child.WaitForExit(50))
            {
                Console.Error.Write(ReadLogFrom(log, logStart));
                Console.Error.WriteLine($"dedupfs: mount: the daemon exited ({child.ExitCode}) before the mount answered; log: {log}");
                return 1;
            }

            if (Answers(settings)) return 0;
        }

        Console.Error.WriteLine($"dedupfs: mount: no answer from {settings.MountPoint} after 90 s (daemon pid {child.Id}); log: {log}");
        return 1;
    }

    private static bool Answers(MountSettings settings)
    {
        if (MountTable.FindFuse(settings.MountPoint) is not { } entry || entry.MountPoint != settings.MountPoint) return false;
        // A stat of the root is answered by the daemon once INIT is done. It runs aside with a
        // time limit: a daemon that is stuck must cost us a clear error, not our own hang.
        var stat = Task.Run(() =>
        {
            try
            {
                _ = File.GetAttributes(settings.MountPoint);
                return true;
            }
            catch (IOException)
            {
                return false;
            }
        });
        return stat.Wait(TimeSpan.FromSeconds(5)) && stat.Result;
    }

    private static string ReadLogFrom(string log, long offset)
    {
        try
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            stream.Seek(Math.Min(offset, stream.Length), SeekOrigin.Begin);
            return new StreamReader(stream).ReadToEnd();
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>How to run this same program again: the apphost, or `dotnet dedupfs.dll`.</summary>
    private static IEnumerable<string> SelfCommand()
    {
        string host = Environment.ProcessPath ?? "dotnet";
        yield return host;
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") yield return typeof(MountCommand).Assembly.Location;
    }
}
