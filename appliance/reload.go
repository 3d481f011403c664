package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/reeve-edge/reeve/config"
	"github.com/reeve-edge/reeve/logging"
)

// reload is what SIGHUP (systemctl reload) does: the configuration file is
// read again and the settings that can change while running take effect
// (log.level, election.rules, the admin token: admin.token_file is read
// again); the election policy folder is rescanned, so
// a new rule's module loads (and is self-tested) before it decides. A file that no
// longer loads changes nothing. Any other changed setting is named in the
// log as waiting for a restart.
func (s *Server) reload(ctx context.Context, level *slog.LevelVar) error {
	defer s.policies.ReloadAll(ctx)
	if s.cfg.Source == "" {
		s.log.Info("reload: running on embedded defaults, no file to re-read; election policies rescanned")
		return nil
	}
	next, err := config.Load(s.cfg.Source)
	if err != nil {
		s.log.Error("reload: configuration not applied; the running one stays", "config", s.cfg.Source, "err", err)
		return fmt.Errorf("%s not applied: %w", s.cfg.Source, err)
	}
	if next.Log.Level != s.cfg.Log.Level && level != nil {
		l, err := logging.ParseLevel(next.Log.Level)
		if err == nil { // validated by config.Load
			level.Set(l)
			s.log.Info("reload: log level changed", "from", s.cfg.Log.Level, "to", next.Log.Level)
			s.cfg.Log.Level = next.Log.Level
		}
	}
	// The token file is read again even when its name did not change: an
	// operator rotates the token by rewriting the file.
	if token, err := adminToken(next.Admin); err != nil {
		s.log.Error("reload: admin token not changed; the running one stays", "err", err)
	} else {
		s.admin.SetToken(token)
		if next.Admin.TokenFile != s.cfg.Admin.TokenFile {
			s.log.Info("reload: admin token file changed", "from", s.cfg.Admin.TokenFile, "to", next.Admin.TokenFile)
		}
		s.cfg.Admin.TokenFile = next.Admin.TokenFile
	}
	if !reflect.DeepEqual(next.Election.Rules, s.cfg.Election.Rules) {
		s.policies.SetRules(ctx, policyRules(next.Election.Rules))
		s.log.Info("reload: election rules changed", "rules", len(next.Election.Rules))
		s.cfg.Election.Rules = next.Election.Rules
	}
	if pending := changedKeys(s.cfg, next); len(pending) > 0 {
		s.log.Warn("reload: these settings changed in the file and take effect at the next restart",
			"config", s.cfg.Source, "keys", strings.Join(pending, ","))
	} else {
		s.log.Info("reload: configuration re-read; election policies rescanned", "config", s.cfg.Source)
	}
	return nil
}

// changedKeys lists the settings, as section.key, whose values differ
// between two configurations.
func changedKeys(old, next *config.Config) []string {
	var keys []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem()
	t := ov.Type()
	for i := range t.NumField() {
		section := tomlName(t.Field(i))
		if section == "" || reflect.DeepEqual(ov.Field(i).Interface(), nv.Field(i).Interface()) {
			continue
		}
		of, nf := ov.Field(i), nv.Field(i)
		if of.Kind() != reflect.Struct {
			keys = append(keys, section)
			continue
		}
		for j := range of.Type().NumField() {
			key := tomlName(of.Type().Field(j))
			if key != "" && !reflect.DeepEqual(of.Field(j).Interface(), nf.Field(j).Interface()) {
				keys = append(keys, section+"."+key)
			}
		}
	}
	return keys
}

// tomlName is a struct field's TOML key, or "" for a field not read from
// the file.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" || !f.IsExported() {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}
