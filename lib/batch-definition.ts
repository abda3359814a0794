/**
 * The batch state machine, as one Step Functions definition in JSONPath: a Distributed Map over items in S3, each
 * item one child execution of the workflow. Shape:
 *
 *   Apply batch defaults ─► Prepare batch ─► Which item format? ─┬─ json  ─► Run items (JSON)       ┐
 *                                                                ├─ jsonl ─► Run items (JSON Lines) ├─ each item: Run item (…)
 *                                                                ├─ csv   ─► Run items (CSV)        ┘   (startExecution.sync:2)
 *                                                                └─ else  ─► Unknown item format
 *
 * One Distributed Map per format because an ItemReader's InputType is fixed in the definition; the three are the
 * same but for it. The local batch (local/batch.ts) runs this very definition with the ItemReaders replaced by
 * `ItemsPath` (aws-local-stepfunctions has no ItemReader), and nothing else changed.
 */
import { Duration } from 'aws-cdk-lib/core';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { BATCH_RESULTS_PREFIX, BatchStateNames, ITEM_FORMATS, type BatchChildInput, type ItemFormat } from '../lambdas/shared/batch-contract';

export interface BatchDefinitionProps {
  /** The workflow each item runs as a child execution. */
  readonly workflow: sfn.IStateMachine;
  /** Where the ResultWriter writes (under `batch-results/`). */
  readonly resultBucket: s3.IBucket;
  /** Child executions at once when the input does not say. */
  readonly maxConcurrency: number;
  /** The share of failed items (0-100) a batch tolerates when the input does not say. */
  readonly toleratedFailurePercentage: number;
}

/** A ResultWriter whose grants the construct writes itself (on its prefix only, not the whole bucket). */
class ResultWriterOnPrefix extends sfn.ResultWriterV2 {
  override providePolicyStatements() {
    return [];
  }
}

/** The ItemReader of each format (the bucket and key come from the input; grants are the construct's). */
function itemReader(format: ItemFormat): sfn.IItemReader {
  const props = { bucketNamePath: sfn.JsonPath.stringAt('$.batch.items.bucket'), key: sfn.JsonPath.stringAt('$.batch.items.key') };
  switch (format) {
    case 'json':
      return new sfn.S3JsonItemReader(props);
    case 'jsonl':
      return new sfn.S3JsonLItemReader(props);
    case 'csv':
      return new sfn.S3CsvItemReader({ ...props, csvHeaders: sfn.CsvHeaders.useFirstRow() });
  }
}

/**
 * Transient refusals of StartExecution (the account's open-execution limit, throttling): the child did not start,
 * or a retry with the same name and input while it runs returns the same execution.
 */
const START_CHILD_RETRY: sfn.RetryProps = {
  errors: ['StepFunctions.ExecutionLimitExceeded', 'StepFunctions.AWSStepFunctionsException'],
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 6,
  maxDelay: Duration.seconds(60),
  jitterStrategy: sfn.JitterType.FULL,
};

/** The fields of what each child gets (checked at compile time against BatchChildInput). */
type Selector = { [K in keyof BatchChildInput as `${K}${K extends 'run' ? '' : '.$'}`]: K extends 'run' ? { 'vars.$': string } : string };

export function buildBatchDefinition(scope: Construct, props: BatchDefinitionProps): { chain: sfn.IChainable; maps: sfn.DistributedMap[] } {
  const defaults = sfn.Pass.jsonPath(scope, BatchStateNames.defaults, {
    parameters: {
      defaults: { maxConcurrency: props.maxConcurrency, toleratedFailurePercentage: props.toleratedFailurePercentage },
      noVars: { vars: {} },
      'input.$': '$',
    },
  });
  // The input over the defaults; the template with `vars: {}` unless it has its own; the batch's id (a hash of its
  // execution ARN: 32 characters, so every child name fits Step Functions' 80).
  const prepare = sfn.Pass.jsonPath(scope, BatchStateNames.prepare, {
    parameters: {
      'batch.$': 'States.JsonMerge($.defaults, $.input, false)',
      'template.$': 'States.JsonMerge($.noVars, $.input.template, false)',
      'batchId.$': "States.Hash($$.Execution.Id, 'MD5')",
    },
  });
  const unknownFormat = sfn.Fail.jsonPath(scope, BatchStateNames.unknownFormat, {
    error: 'Batch.InvalidInput',
    cause: `items.format must be one of ${ITEM_FORMATS.join(', ')}`,
  });
  const choice = sfn.Choice.jsonPath(scope, BatchStateNames.format);
  const maps = ITEM_FORMATS.map((format) => {
    const selector: Selector = {
      'template.$': '$.template',
      // The item's fields over the template's vars (the item wins). The template's vars are copied first
      // (StringToJson of JsonToString): aws-local-stepfunctions' JsonMerge writes into its first argument, which
      // would carry one item's vars into the next; in Step Functions the copy is a no-op.
      run: { 'vars.$': 'States.JsonMerge(States.StringToJson(States.JsonToString($.template.vars)), $$.Map.Item.Value, false)' },
      'item.$': '$$.Map.Item.Value',
      'index.$': '$$.Map.Item.Index',
      'batchId.$': '$.batchId',
    };
    const map = sfn.DistributedMap.jsonPath(scope, BatchStateNames.runItems[format], {
      itemReader: itemReader(format),
      itemSelector: selector,
      maxConcurrencyPath: '$.batch.maxConcurrency',
      toleratedFailurePercentagePath: '$.batch.toleratedFailurePercentage',
      resultWriterV2: new ResultWriterOnPrefix({ bucket: props.resultBucket, prefix: BATCH_RESULTS_PREFIX }),
      mapExecutionType: sfn.StateMachineType.STANDARD,
      label: BatchStateNames.mapLabels[format],
    });
    // The child's name is the batch's id, the item's index and the redrive count of this map iteration: a retry
    // of the start reuses the name (Step Functions refuses a second execution of it), a redriven batch reruns its
    // failed items each in a fresh execution, so in a fresh session.
    const runItem = tasks.StepFunctionsStartExecution.jsonPath(scope, BatchStateNames.runItem[format], {
      stateMachine: props.workflow,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      name: sfn.JsonPath.format('{}-{}-{}', sfn.JsonPath.stringAt('$.batchId'), sfn.JsonPath.stringAt('$.index'), sfn.JsonPath.stringAt('$$.Execution.RedriveCount')),
      input: sfn.TaskInput.fromJsonPathAt('States.JsonMerge($.template, $.run, false)'),
      associateWithParent: false,
      resultSelector: { 'executionArn.$': '$.ExecutionArn', 'output.$': '$.Output' },
    }).addRetry(START_CHILD_RETRY);
    map.itemProcessor(runItem);
    choice.when(sfn.Condition.and(sfn.Condition.isPresent('$.batch.items.format'), sfn.Condition.stringEquals('$.batch.items.format', format)), map);
    return map;
  });
  choice.otherwise(unknownFormat);
  return { chain: defaults.next(prepare).next(choice), maps };
}
