package policy

import "sort"

// FallbackReport is one policy's failure in one election round: how many
// of the round's partitions first-isr decided in its place, for one cause.
type FallbackReport struct {
	Fallback
	Partitions int
}

// settle is the one place where a policy's answers are checked: a batch
// that failed or answered the wrong number of decisions, a decision its
// policy could not make (Decision.Err), and one Validate refuses are each
// replaced by first-isr's decision for that partition, with a Source that
// says in place of what and why. Each replacement is counted in
// reeve_policy_fallbacks_total and the decision log; each (policy, cause)
// of the round is logged once and reported to OnFallback.
func (c *Controller) settle(in []Input, ds []Decision, err error) []Decision {
	if err == nil && len(ds) != len(in) {
		err = refuse(CauseWrongCount, "%d answers for %d partitions", len(ds), len(in))
	}
	if err != nil {
		ds = make([]Decision, len(in))
		for i := range ds {
			ds[i].Err = err
		}
	}
	name := c.policy.Name()
	reports := map[Fallback]*FallbackReport{} // by the first error of each policy and cause
	byCause := map[[3]string]Fallback{}
	for i := range ds {
		d := &ds[i]
		if d.Source.Policy == "" {
			d.Source.Policy = name
		}
		why := d.Err
		if why == nil {
			why = Validate(in[i], *d)
		}
		if why == nil {
			continue
		}
		fb := Fallback{Policy: d.Source.Policy, Digest: d.Source.Digest, Cause: CauseOf(why), Err: why.Error()}
		*d = firstISR(in[i])
		d.Source = Source{Policy: FirstISR{}.Name(), Fallback: &fb}
		c.Decisions.countFallback()
		c.countFallback(fb.Policy, fb.Cause)
		k := [3]string{fb.Policy, fb.Digest, string(fb.Cause)}
		first, seen := byCause[k]
		if !seen {
			byCause[k], first = fb, fb
			reports[fb] = &FallbackReport{Fallback: fb}
		}
		reports[first].Partitions++
	}
	if len(reports) == 0 {
		return ds
	}
	list := make([]*FallbackReport, 0, len(reports))
	for _, r := range reports {
		list = append(list, r)
	}
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		return a.Policy < b.Policy || a.Policy == b.Policy && (a.Digest < b.Digest || a.Digest == b.Digest && a.Cause < b.Cause)
	})
	for _, r := range list {
		c.log.Warn("election policy failed; first-isr decided in its place", "policy", r.Policy, "digest", r.Digest,
			"cause", string(r.Cause), "partitions", r.Partitions, "err", r.Err)
		if c.OnFallback != nil {
			c.OnFallback(*r)
		}
	}
	return ds
}
