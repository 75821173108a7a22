package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/trackerd/trackerd/store"
	"github.com/trackerd/trackerd/web"
)

const issueUsage = "issue list [-json] [-status S,...] [-limit N] | issue show ID [-json]"

func cmdIssue(ctx context.Context, a *app, args []string) error {
	fs := a.newFlags("issue")
	asJSON := fs.Bool("json", false, "print JSON (DESIGN §3 shape)")
	limit := fs.Int("limit", 0, "list: print at most N issues (0: all)")
	status := fs.String("status", "", "list: only these comma-separated statuses")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageErrorf("usage: trackerd %s", issueUsage)
	}
	_, st, err := a.loadStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()

	switch pos[0] {
	case "list":
		if err := needArgs(pos, 1, "issue list [-json] [-status S,...] [-limit N]"); err != nil {
			return err
		}
		issues, err := st.ListIssues(ctx, store.IssueFilter{Statuses: splitList(*status), Sort: "id", Limit: *limit})
		if err != nil {
			return fmt.Errorf("issue list: %w", err)
		}
		out, err := web.LoadIssues(ctx, st, issues)
		if err != nil {
			return fmt.Errorf("issue list: %w", err)
		}
		if *asJSON {
			return writeJSON(a, out)
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tACTIVITY\tTITLE")
		for _, is := range out {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", is.ID, is.Status, is.Priority, is.Activity.Format("2006-01-02 15:04"), is.Title)
		}
		return tw.Flush()

	case "show":
		if err := needArgs(pos, 2, "issue show ID [-json]"); err != nil {
			return err
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(pos[1], "issue"), 10, 64)
		if err != nil || id <= 0 {
			return usageErrorf("issue show: %q is not an issue number", pos[1])
		}
		is, err := st.Issue(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("issue show: there is no issue %d", id)
		}
		if err != nil {
			return fmt.Errorf("issue show: %w", err)
		}
		d, err := web.LoadIssueDetail(ctx, st, is)
		if err != nil {
			return fmt.Errorf("issue show: %w", err)
		}
		if *asJSON {
			return writeJSON(a, d)
		}
		assignee := "(nobody)"
		if d.Assignee != nil {
			assignee = *d.Assignee
		}
		fmt.Fprintf(a.stdout, "issue%d: %s\nstatus:   %s\npriority: %s\nassignee: %s\nkeywords: %s\nnosy:     %s\ncreated:  %s\nactivity: %s\n",
			d.ID, d.Title, d.Status, d.Priority, assignee, strings.Join(d.Keywords, ", "),
			strings.Join(d.Nosy, ", "), d.Created.Format("2006-01-02 15:04:05Z07:00"), d.Activity.Format("2006-01-02 15:04:05Z07:00"))
		for _, m := range d.Messages {
			fmt.Fprintf(a.stdout, "\n--- msg%d from %s at %s\n%s\n", m.ID, m.Author, m.Date.Format("2006-01-02 15:04:05Z07:00"), m.Content)
			for _, f := range m.Files {
				fmt.Fprintf(a.stdout, "[file: %s, %s, %d bytes]\n", f.Name, f.Type, f.Size)
			}
		}
		return nil
	}
	return usageErrorf("usage: trackerd %s", issueUsage)
}
