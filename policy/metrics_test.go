package policy

import "testing"

func TestFallbacksName(t *testing.T) {
	tests := []struct {
		name, policy string
		cause        Cause
		want         string
	}{
		{name: "module", policy: "prefer-label.wasm", cause: "trap",
			want: `reeve_policy_fallbacks_total{policy="prefer-label.wasm",cause="trap"}`},
		{name: "quotes escaped", policy: `odd"name\.wasm`, cause: "deadline",
			want: `reeve_policy_fallbacks_total{policy="odd\"name\\.wasm",cause="deadline"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FallbacksName(tt.policy, tt.cause); got != tt.want {
				t.Errorf("FallbacksName(%q, %q) = %s, want %s", tt.policy, tt.cause, got, tt.want)
			}
		})
	}
}
