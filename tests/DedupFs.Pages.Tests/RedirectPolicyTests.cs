// The Redirect break-share decision (BreakShare.cs): the mapping is left untouched, the caller
// is told where the operation belongs, and a caller that follows the redirect to a per-owner
// overlay gets copy-on-write there while the base and its other sharers keep their bytes.
namespace DedupFs.Pages.Tests;

public class RedirectPolicyTests
{
    private const int P = PageContent.Size;

    [Theory]
    [InlineData(BreakShareAction.Redirect)]
    [InlineData(BreakShareAction.Refuse)]
    public void Refusal_and_redirect_leave_the_mapping_untouched_on_every_path(BreakShareAction action)
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2), overlay = t.Engine.OpenMapping(3);
        a.Write(0, TestEngine.Bytes(4 * P, 20));
        t.Engine.CloneMapping(a, b);
        b.Write(0, TestEngine.Bytes(P, 21));   // page 0 private, pages 1..3 shared
        byte[] before = TestEngine.ReadAll(b);
        var pagesBefore = Enumerable.Range(0, 4).Select(i => b.PageAt(i)).ToList();
        KsmStatistics statsBefore = t.Engine.Statistics;
        int broken = 0;
        t.Engine.SharedPageBroken += (in BreakShareEvent _) => broken++;
        var asked = new List<BreakShareReason>();
        BreakShareDecision decision = action == BreakShareAction.Redirect ? BreakShareDecision.RedirectTo(overlay) : BreakShareDecision.Refuse;
        b.Policy = (in BreakShareEvent e) => { asked.Add(e.Reason); return decision; };
        void Fails(Action op)
        {
            BreakShareRefusedException ex = Assert.ThrowsAny<BreakShareRefusedException>(op);
            Assert.Equal(action == BreakShareAction.Redirect, ex is BreakShareRedirectedException { Target: var target } && target == overlay);
        }

        var w = Assert.ThrowsAny<BreakShareRefusedException>(() => b.Write(0, TestEngine.Bytes(3 * P, 22)));
        Assert.Equal(1, w.Event.Index);        // the first shared slot; page 0 was not changed either
        Assert.Same(b, w.Event.Mapping);
        Fails(() => b.Write(0, TestEngine.Bytes(3 * P, 22)));
        Fails(() => b.Truncate(P + 5));
        Fails(() => b.PunchHole(P, P));
        Fails(() => b.ZeroRange(2 * P, P, keepSize: true));
        Fails(() => t.Engine.Clone(a, 0, b, 0, 4 * P));
        Assert.Equal([BreakShareReason.Write, BreakShareReason.Write, BreakShareReason.Truncate, BreakShareReason.Punch, BreakShareReason.Punch,
            BreakShareReason.CloneDestination], asked);

        Assert.Equal(before, TestEngine.ReadAll(b));
        Assert.Equal(4 * P, b.Length);
        Assert.Equal(pagesBefore, Enumerable.Range(0, 4).Select(i => b.PageAt(i)).ToList());
        Assert.Equal(0, overlay.Length);       // the Pages layer never writes the target itself
        Assert.Equal(0, broken);
        Assert.Equal(statsBefore, t.Engine.Statistics);
        Assert.False(t.Engine.Store.IsPoisoned);
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void A_caller_that_ignores_redirects_sees_a_refusal_with_the_mappings_errno()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2), overlay = t.Engine.OpenMapping(3);
        a.Write(0, TestEngine.Bytes(2 * P, 23));
        t.Engine.CloneMapping(a, b);
        b.Policy = (in BreakShareEvent _) => BreakShareDecision.RedirectTo(overlay);
        b.RefusedErrno = 26;
        BreakShareRefusedException ex = Assert.ThrowsAny<BreakShareRefusedException>(() => b.Write(0, TestEngine.Bytes(P, 24)));
        Assert.Equal(26, ex.Errno);
    }

    [Fact]
    public void Following_a_redirect_to_a_per_owner_overlay_keeps_the_base_and_its_sharers()
    {
        using var t = new TestEngine();
        Mapping image = t.Engine.OpenMapping(1), sibling = t.Engine.OpenMapping(2);
        byte[] layer = TestEngine.Bytes(8 * P, 25);
        image.Write(0, layer);
        t.Engine.CloneMapping(image, sibling);             // another container uses the same layer
        var overlays = new Dictionary<ulong, Mapping>();
        // The base image is never broken: each owner's writes go to its own overlay, made on
        // the first write as a clone of the base (copy-up without copying bytes).
        image.Policy = (in BreakShareEvent e) =>
        {
            if (!overlays.TryGetValue(42, out Mapping? o)) overlays[42] = o = t.Engine.OpenMapping(100);
            return BreakShareDecision.RedirectTo(o);
        };

        byte[] patch = TestEngine.Bytes(P + 100, 26);
        Mapping written = WriteFollowingRedirects(t.Engine, image, 3 * P + 7, patch, image);

        Assert.Same(overlays[42], written);
        byte[] expect = (byte[])layer.Clone();
        patch.CopyTo(expect, 3 * P + 7);
        Assert.Equal(expect, TestEngine.ReadAll(written));
        Assert.Equal(layer, TestEngine.ReadAll(image));
        Assert.Equal(layer, TestEngine.ReadAll(sibling));
        Assert.Equal(image.PageAt(0), written.PageAt(0));  // untouched pages still shared three ways
        Assert.Equal(3, t.Engine.Rmap(image.PageAt(0)).Count);
        Assert.Equal(2, t.Engine.Statistics.CowKsm);        // pages 3 and 4, in the overlay only
        Assert.Empty(t.Engine.Verify());
    }

    // What a filesystem does with a redirect: copy-up on first use, then the same operation there.
    private static Mapping WriteFollowingRedirects(PageEngine engine, Mapping m, long offset, byte[] data, Mapping baseMapping)
    {
        for (int hops = 0; hops < 4; hops++)
        {
            try
            {
                m.Write(offset, data);
                return m;
            }
            catch (BreakShareRedirectedException r)
            {
                if (r.Target.Length == 0) engine.CloneMapping(baseMapping, r.Target);
                m = r.Target;
            }
        }
        throw new InvalidOperationException("too many redirects");
    }

    [Fact]
    public void Redirect_to_itself_or_to_another_engine_is_a_policy_bug_and_changes_nothing()
    {
        using var t = new TestEngine();
        using var other = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), b = t.Engine.OpenMapping(2);
        a.Write(0, TestEngine.Bytes(2 * P, 27));
        t.Engine.CloneMapping(a, b);
        byte[] before = TestEngine.ReadAll(b);
        b.Policy = (in BreakShareEvent _) => BreakShareDecision.RedirectTo(b);
        Assert.Throws<ArgumentException>(() => b.Write(0, TestEngine.Bytes(P, 28)));
        b.Policy = (in BreakShareEvent _) => BreakShareDecision.RedirectTo(other.Engine.OpenMapping(2));
        Assert.Throws<ArgumentException>(() => t.Engine.Clone(a, 0, b, 0, 2 * P));
        Assert.Throws<ArgumentNullException>(() => BreakShareDecision.RedirectTo(null!));
        Assert.Equal(before, TestEngine.ReadAll(b));
        Assert.False(t.Engine.Store.IsPoisoned);
        Assert.Empty(t.Engine.Verify());
        b.Policy = null;
        b.Write(0, TestEngine.Bytes(P, 29));   // still writable: nothing was left half done
        Assert.Empty(t.Engine.Verify());
    }

    [Fact]
    public void Private_slots_never_ask_the_policy()
    {
        using var t = new TestEngine();
        Mapping a = t.Engine.OpenMapping(1), overlay = t.Engine.OpenMapping(2);
        a.Write(0, TestEngine.Bytes(2 * P, 30));
        a.Policy = (in BreakShareEvent _) => BreakShareDecision.RedirectTo(overlay);
        byte[] next = TestEngine.Bytes(2 * P, 31);
        a.Write(0, next);
        Assert.Equal(next, TestEngine.ReadAll(a));
        Assert.Equal(0, overlay.Length);
    }
}
