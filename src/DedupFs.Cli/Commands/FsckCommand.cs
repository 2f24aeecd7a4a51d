using System.CommandLine;
using DedupFs.Store;

namespace DedupFs.Cli.Commands;

/// <summary>
/// dedupfs fsck STORE [--repair]: checks an unmounted store (refcounts against mappings, the
/// content index, free-slot accounting, every page's checksum) and, with --repair, fixes what
/// can be fixed without losing data. Exit codes follow fsck(8): 0 clean, 1 errors corrected,
/// 4 errors left uncorrected, 8 operational error (no store there, or in use).
/// </summary>
internal static class FsckCommand
{
    public const int Clean = 0, Corrected = 1, Uncorrected = 4, OperationalError = 8;

    public static Command Create()
    {
        var store = new Argument<string>("store") { Description = "The store directory (not mounted)" };
        var repair = new Option<bool>("--repair") { Description = "Fix what can be fixed without losing data" };
        var command = new Command("fsck", "Check (and repair) an unmounted DedupFs store") { store, repair };
        command.SetAction(result => Run(result.GetValue(store)!, result.GetValue(repair), Console.Out, Console.Error));
        return command;
    }

    internal static int Run(string directory, bool repair, TextWriter output, TextWriter error)
    {
        if (!Directory.Exists(directory))
        {
            error.WriteLine($"dedupfs: fsck: {directory}: no such directory");
            return OperationalError;
        }

        FsckReport report;
        try
        {
            report = Fsck.Run(directory, repair, line => error.WriteLine(line));
        }
        catch (StoreException e)
        {
            error.WriteLine($"dedupfs: fsck: {e.Message}");
            return OperationalError;
        }

        if (!report.Opened)
        {
            error.WriteLine($"dedupfs: fsck: {report.Problems.FirstOrDefault()}");
            return OperationalError;
        }

        output.Write(report.ToString());
        if (report.Clean)
        {
            return Clean;
        }

        return repair && report.Unrepairable.Count == 0 ? Corrected : Uncorrected;
    }
}
