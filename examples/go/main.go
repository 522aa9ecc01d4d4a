// Command garden-deploy-go deploys a model with garden-deploy from Go: it starts the durable
// `deployment` workflow through the Go Temporal SDK as docs/contract.md describes (update-with-start
// of the `deploy` Update), prints each stage the `progress` query reports, and exits once the
// deployment serves (0) or has ended otherwise (1). A garden-deploy worker must poll the task queue.
//
//	go run . -spec spec.json [-address localhost:7233] [-namespace default] [-task-queue garden-deploy]
//
// The spec file holds the DeploymentSpec in its parsed form (every default filled in, durations in
// milliseconds: docs/contract/deployment-spec.parsed.schema.json).
//
// Exit codes: 0 serving; 1 it failed, was cancelled or rolled back, is blocked, or the timeout
// passed; 2 bad input, the deployment refused the request, or Temporal unreachable.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// The names of docs/contract/workflow-contract.json.
const (
	workflowType     = "deployment"
	deployUpdate     = "deploy"
	progressQuery    = "progress"
	refusalErrorType = "DeploymentStateError"
)

// deploymentStart is the workflow's input; the spec and settings pass through as they were read.
type deploymentStart struct {
	Spec     json.RawMessage `json:"spec"`
	Settings json.RawMessage `json:"settings,omitempty"`
}

// deployRequest is the argument of the `deploy` Update.
type deployRequest struct {
	Spec json.RawMessage `json:"spec"`
}

// specIdentity is what the workflow id and the search attributes are made of.
type specIdentity struct {
	Name    string `json:"name"`
	Project string `json:"project"`
	Region  string `json:"region"`
	Model   struct {
		URI string `json:"uri"`
	} `json:"model"`
}

// progress is the part of the `progress` query's answer (DeployProgress) this program shows.
type progress struct {
	Stage   string  `json:"stage"`
	Percent float64 `json:"percent"`
	Steps   []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"steps"`
	Replicas *struct {
		Available int `json:"available"`
		Target    int `json:"target"`
	} `json:"replicas"`
	LastError *struct {
		Message string `json:"message"`
	} `json:"lastError"`
}

// deploymentResult is the part of the `deploy` Update's answer (DeploymentResult) this program shows.
type deploymentResult struct {
	Outcome      string `json:"outcome"`
	InferenceURL string `json:"inferenceUrl"`
	Reason       string `json:"reason"`
	Resources    struct {
		Endpoint string `json:"endpoint"`
	} `json:"resources"`
}

func main() {
	os.Exit(run())
}

func run() int {
	address := flag.String("address", envOr("TEMPORAL_ADDRESS", "localhost:7233"), "Temporal frontend host:port")
	namespace := flag.String("namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
	taskQueue := flag.String("task-queue", envOr("GARDEN_DEPLOY_TASK_QUEUE", "garden-deploy"), "task queue the garden-deploy worker polls")
	specFile := flag.String("spec", "", "JSON file with the parsed DeploymentSpec (required)")
	settings := flag.String("settings", "", `operator settings as a JSON object, e.g. {"heartbeatTimeoutMs":2000}`)
	requestID := flag.String("request-id", "", "the deploy request's id (Update id): the same id again gets the same answer (default: random)")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up following after this long (the deployment goes on)")
	interval := flag.Duration("interval", time.Second, "how often to query the progress")
	flag.Parse()

	if *specFile == "" {
		return usage("-spec is required")
	}
	spec, err := os.ReadFile(*specFile)
	if err != nil {
		return usage(err.Error())
	}
	var id specIdentity
	if err := json.Unmarshal(spec, &id); err != nil || id.Name == "" || id.Project == "" || id.Region == "" || id.Model.URI == "" {
		return usage(fmt.Sprintf("%s: expected a JSON DeploymentSpec with name, project, region and model.uri", *specFile))
	}
	input := deploymentStart{Spec: spec}
	if *settings != "" {
		if !json.Valid([]byte(*settings)) {
			return usage("-settings is not valid JSON")
		}
		input.Settings = json.RawMessage(*settings)
	}
	if *requestID == "" {
		*requestID = randomID()
	}

	// The SDK logs at INFO to stdout by default; this program's output is its own.
	logger := sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, err := client.Dial(client.Options{HostPort: *address, Namespace: *namespace, Logger: logger})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot reach Temporal at %s: %v\n", *address, err)
		return 2
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	workflowID := fmt.Sprintf("deploy/%s/%s/%s", id.Project, id.Region, id.Name)
	if problem := previousRunProblem(ctx, c, workflowID); problem != "" {
		fmt.Fprintln(os.Stderr, problem)
		return 2
	}
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:        workflowID,
		TaskQueue: *taskQueue,
		// A running deployment of this id is attached to; its deploy Update refuses another spec.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword("DeployStage").ValueSet("VALIDATING"),
			temporal.NewSearchAttributeKeyKeyword("DeploymentName").ValueSet(id.Name),
			temporal.NewSearchAttributeKeyKeyword("ModelUri").ValueSet(id.Model.URI),
			temporal.NewSearchAttributeKeyKeyword("GcpProject").ValueSet(id.Project),
			temporal.NewSearchAttributeKeyKeyword("GcpRegion").ValueSet(id.Region),
		),
	}, workflowType, input)
	// Returns once a worker accepted (or refused) the Update: with no worker polling it waits.
	update, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateID:     *requestID,
			UpdateName:   deployUpdate,
			Args:         []any{deployRequest{Spec: spec}},
			WaitForStage: client.WorkflowUpdateStageAccepted,
		},
	})
	if err != nil {
		return requestFailed(err)
	}
	fmt.Printf("deployment %s (run %s) on task queue %s, request %s\n", workflowID, update.RunID(), *taskQueue, *requestID)

	// The Update answers once the deployment serves or its first deploy has ended.
	type answer struct {
		result deploymentResult
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		var result deploymentResult
		err := update.Get(ctx, &result)
		answered <- answer{result, err}
	}()

	ticker := time.NewTicker(*interval)
	defer ticker.Stop()
	shown := ""
	show := func() {
		line, err := progressLine(ctx, c, workflowID)
		if err != nil {
			fmt.Fprintf(os.Stderr, "progress query: %v\n", err)
		} else if line != shown {
			fmt.Println(line)
			shown = line
		}
	}
	show()
	for {
		select {
		case <-ticker.C:
			show()
		case a := <-answered:
			show() // the final stage, even if the last tick missed it
			if a.err != nil {
				return requestFailed(a.err)
			}
			if a.result.Outcome != "serving" {
				fmt.Printf("deployment %s: %s: %s\n", workflowID, a.result.Outcome, a.result.Reason)
				return 1
			}
			fmt.Printf("serving: endpoint %s, inference URL %s\n", a.result.Resources.Endpoint, a.result.InferenceURL)
			return 0
		case <-ctx.Done():
			fmt.Fprintf(os.Stderr, "still not serving after %s; the deployment goes on (query %s)\n", *timeout, workflowID)
			return 1
		}
	}
}

// progressLine queries the deployment's progress: its stage, percent, running step and replicas.
func progressLine(ctx context.Context, c client.Client, workflowID string) (string, error) {
	value, err := c.QueryWorkflow(ctx, workflowID, "", progressQuery)
	if err != nil {
		return "", err
	}
	var p progress
	if err := value.Get(&p); err != nil {
		return "", err
	}
	line := fmt.Sprintf("stage %s %.0f%%", p.Stage, p.Percent)
	for _, step := range p.Steps {
		if step.Status == "running" {
			line += " · " + step.Name
			if step.Detail != "" {
				line += ": " + step.Detail
			}
		}
	}
	if p.Replicas != nil {
		line += fmt.Sprintf(" · replicas %d/%d", p.Replicas.Available, p.Replicas.Target)
	}
	if p.LastError != nil && p.Stage != "SERVING" {
		line += " · last error: " + p.LastError.Message
	}
	return line, nil
}

// previousRunProblem refuses what garden-deploy's own client refuses: a previous run that ended
// without removing what it created (terminated, timed out), or one of garden-deploy 0.1.
func previousRunProblem(ctx context.Context, c client.Client, workflowID string) string {
	described, err := c.DescribeWorkflowExecution(ctx, workflowID, "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return ""
	}
	if err != nil {
		return fmt.Sprintf("cannot describe %s: %v", workflowID, err)
	}
	info := described.GetWorkflowExecutionInfo()
	status := info.GetStatus()
	switch {
	case info.GetType().GetName() != workflowType && status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return fmt.Sprintf("%s is a %s run of garden-deploy 0.1; follow it with `garden-deploy watch %s`", workflowID, info.GetType().GetName(), workflowID)
	case status == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED || status == enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return fmt.Sprintf("the previous run of %s (%s) ended without removing what it created: run `garden-deploy teardown %s` first", workflowID, status, workflowID)
	}
	return ""
}

// requestFailed reports a refusal (the deployment's reason) or another error.
func requestFailed(err error) int {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == refusalErrorType {
		fmt.Fprintf(os.Stderr, "refused: %s\n", appErr.Message())
		return 2
	}
	if errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "timed out before a worker answered: is a garden-deploy worker polling the task queue?")
		return 1
	}
	fmt.Fprintf(os.Stderr, "deploy request failed: %v\n", err)
	return 1
}

func usage(message string) int {
	fmt.Fprintf(os.Stderr, "garden-deploy-go: %s\n", strings.TrimSpace(message))
	flag.Usage()
	return 2
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
