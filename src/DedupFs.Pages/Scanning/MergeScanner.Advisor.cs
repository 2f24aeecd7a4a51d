// The scan-time advisor [advisor_mode = scan-time]: instead of a fixed pages_to_scan, aim for a
// full scan every advisor_target_scan_time seconds without spending more than advisor_max_cpu
// percent of a core. After each full scan:
//
//   factor  = target / scan_time                    (as percentages, scan_time >= 1 s)
//   change  = EWMA(weight 30%) of scan_time / previous scan_time
//   pages   = pages_to_scan / factor x change
//   cost    = pages_to_scan / cpu%                  (pages per percent of a core)
//   pages   = clamp(pages, cost x 10, cost x advisor_max_cpu), then <= advisor_max_pages_to_scan
//
// A scan that took longer than the target scales the batch up, one that was shorter scales it
// down; the CPU bounds keep a burst of new data from making the scanner a CPU hog and a quiet
// store from starving it. We start the average at 100 (no change) so the first full scan does
// not move the batch size on its own, integer arithmetic as the kernel's, and measure CPU time
// per thread across batches (a pass may run on the background thread and on callers of
// ScanBatch). Integer percentages, like the kernel's, so results are reproducible.
namespace DedupFs.Pages;

/// <summary>How the scanner chooses pages_to_scan.</summary>
public enum ScanAdvisor
{
    /// <summary>pages_to_scan as set (the default).</summary>
    None,
    /// <summary>Adjusted after every full scan to meet advisor_target_scan_time within advisor_max_cpu.</summary>
    ScanTime,
}

public sealed partial class MergeScanner
{
    private const int AdvisorMinCpu = 10, EwmaWeight = 30;

    private volatile ScanAdvisor _advisor;
    private volatile int _advisorMaxCpu = 70, _advisorMinPages = 500, _advisorMaxPages = 30000, _advisorTargetSeconds = 200;

    // Under _scanLock: the pass's start, CPU spent in it so far, the previous pass's length, the average.
    private long _passStartMs, _passCpuNs;
    private long _lastScanSeconds;
    private long _change = 100;

    // Clocks, replaceable by tests.
    internal Func<long> NowMilliseconds = () => Environment.TickCount64;
    internal Func<long> ThreadCpuNanoseconds = Interop.ThreadCpuTime.NowNanoseconds;

    /// <summary>none or scan-time; switching resets pages_to_scan (100, or advisor_min_pages_to_scan).</summary>
    public ScanAdvisor AdvisorMode
    {
        get => _advisor;
        set => ThrowOnErrno(SetAdvisorMode(value), "advisor_mode", value);
    }

    /// <summary>Most CPU the advisor lets the scanner use, percent of a core (default 70).</summary>
    public int AdvisorMaxCpu { get => _advisorMaxCpu; set => ThrowOnErrno(SetValue("advisor_max_cpu", value), "advisor_max_cpu", value); }

    /// <summary>pages_to_scan when the advisor is switched on (default 500).</summary>
    public int AdvisorMinPagesToScan { get => _advisorMinPages; set => ThrowOnErrno(SetValue("advisor_min_pages_to_scan", value), "advisor_min_pages_to_scan", value); }

    /// <summary>Most pages_to_scan the advisor chooses (default 30000).</summary>
    public int AdvisorMaxPagesToScan { get => _advisorMaxPages; set => ThrowOnErrno(SetValue("advisor_max_pages_to_scan", value), "advisor_max_pages_to_scan", value); }

    /// <summary>Seconds a full scan should take (default 200).</summary>
    public int AdvisorTargetScanTime { get => _advisorTargetSeconds; set => ThrowOnErrno(SetValue("advisor_target_scan_time", value), "advisor_target_scan_time", value); }

    private int SetAdvisorMode(ScanAdvisor mode)
    {
        lock (_scanLock)
        {
            if (mode == _advisor) return 0;
            _advisor = mode;
            _pagesToScan = mode == ScanAdvisor.None ? 100 : _advisorMinPages;
            _lastScanSeconds = 0;
            _change = 100;
            return 0;
        }
    }

    // The text of advisor_mode, with the current choice in brackets as the kernel prints it.
    private string AdvisorModeText => _advisor == ScanAdvisor.None ? "[none] scan-time" : "none [scan-time]";

    private long _batchCpuStart;

    // Adds the CPU time since the batch started (or since the last call) to the pass's.
    private void AccountBatchCpu()
    {
        long now = ThreadCpuNanoseconds();
        if (_batchCpuStart >= 0 && now >= _batchCpuStart) _passCpuNs += now - _batchCpuStart;
        _batchCpuStart = now;
    }

    private void AdvisorPassStarted()
    {
        _passStartMs = NowMilliseconds();
        _passCpuNs = 0;
    }

    // After a full scan: the new pages_to_scan, if the advisor is on.
    private void AdvisorPassEnded()
    {
        if (_advisor != ScanAdvisor.ScanTime) return;
        long scanTime = Math.Max(1, (NowMilliseconds() - _passStartMs) / 1000);
        _pagesToScan = Advise(_pagesToScan, scanTime, _passCpuNs, ref _lastScanSeconds, ref _change,
            _advisorTargetSeconds, _advisorMaxCpu, _advisorMaxPages);
    }

    /// <summary>The advisor's arithmetic (see the top of this file): the next pages_to_scan after a full scan of
    /// <paramref name="scanSeconds"/> that used <paramref name="cpuNs"/> of CPU; updates the previous scan time and
    /// the averaged change.</summary>
    internal static int Advise(int pagesToScan, long scanSeconds, long cpuNs, ref long lastScanSeconds, ref long change,
        int targetSeconds, int maxCpu, int maxPages)
    {
        long scanTime = Math.Max(1, scanSeconds);
        long cpuPercent = Math.Max(1, cpuNs / 1_000_000 * 100 / (scanTime * 1000));
        long last = lastScanSeconds != 0 ? lastScanSeconds : scanTime;
        long factor = Math.Max(1, targetSeconds * 100L / scanTime);
        long now = Math.Max(1, scanTime * 100 / last);
        change = ((100 - EwmaWeight) * change + EwmaWeight * now) / 100;
        long current = pagesToScan;
        long pages = current * 100 / factor * change / 100;
        long perPageCost = Math.Max(1, current / cpuPercent);
        pages = Math.Min(pages, perPageCost * maxCpu);
        pages = Math.Max(pages, perPageCost * AdvisorMinCpu);
        lastScanSeconds = scanTime;
        return (int)Math.Clamp(pages, 1, maxPages);
    }
}
