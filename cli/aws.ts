/**
 * The CLI's view of AWS: ARNs and regions, the state machine from the stack's outputs, and every AWS error turned
 * into one sentence that says what to do (no credentials, wrong region, unknown ARN, access denied, ...).
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { WebrunErrors } from '../lambdas/shared/contract';
import { isWebrunError } from '../lambdas/shared/errors';

/** Exit codes: 0 ok, 1 the execution failed / was aborted / timed out, 2 the command could not do its job. */
export const EXIT = { ok: 0, executionFailed: 1, usage: 2, interrupted: 130 } as const;

/** A failure of the command itself (not of an execution): printed as one message, exit code 2. */
export class CliError extends Error {
  override readonly name: string;
  /** @param name the error's name in `--json` output: usage and input mistakes are `Webrun.InvalidInput`, as in the local command */
  constructor(message: string, readonly showUsage = false, name: string = WebrunErrors.InvalidInput) {
    super(message);
    this.name = name;
  }
}

export interface ParsedArn {
  partition: string;
  region: string;
  account: string;
  /** `execution`, `stateMachine`, `express`, ... */
  resourceType: string;
  stateMachineName: string;
  executionName?: string;
}

const ARN = /^arn:(aws[a-z-]*):states:([a-z0-9-]+):(\d{12}):(stateMachine|execution|express):([^:\s]+)(?::([^:\s]+))?$/;

/** Parses a Step Functions ARN; throws a usage error naming `what` when it is not one. */
export function parseStatesArn(arn: string, what: 'execution' | 'stateMachine'): ParsedArn {
  const m = ARN.exec(arn.trim());
  const example = what === 'execution'
    ? 'arn:aws:states:<region>:<account>:execution:<state machine>:<name>'
    : 'arn:aws:states:<region>:<account>:stateMachine:<name>';
  if (!m || (what === 'execution' && (m[4] === 'stateMachine' || !m[6])) || (what === 'stateMachine' && (m[4] !== 'stateMachine' || m[6]))) {
    // Caught here, before any AWS call: an input mistake (Webrun.InvalidInput), as docs/OPERATIONS.md says; an ARN
    // Step Functions itself refuses keeps AWS's InvalidArn.
    throw new CliError(`${JSON.stringify(arn)} is not a Step Functions ${what === 'execution' ? 'execution' : 'state machine'} ARN (expected ${example})`, false);
  }
  return { partition: m[1], region: m[2], account: m[3], resourceType: m[4], stateMachineName: m[5], executionName: m[6] };
}

/**
 * The console host of each partition that has a public one, region first (`eu-west-1.console.aws.amazon.com`).
 * Other partitions (the isolated ones, the European Sovereign Cloud) have consoles this command cannot know.
 */
const CONSOLE_HOSTS: Readonly<Record<string, string>> = {
  aws: 'console.aws.amazon.com',
  'aws-cn': 'console.amazonaws.cn',
  'aws-us-gov': 'console.amazonaws-us-gov.com',
};

/**
 * The Step Functions console page of an execution, on its partition's console in its own region; undefined for a
 * partition without a known console or a string that is no execution ARN.
 */
export function executionConsoleUrl(executionArn: string): string | undefined {
  const m = ARN.exec(executionArn.trim());
  if (!m || m[4] === 'stateMachine' || !m[6]) return undefined;
  const [, partition, region] = m;
  const host = CONSOLE_HOSTS[partition];
  return host ? `https://${region}.${host}/states/home?region=${region}#/v2/executions/details/${executionArn.trim()}` : undefined;
}

/**
 * The region for a call on `arn`: the ARN's own region. A `--region` that says otherwise is a mistake worth
 * stopping for (the ARN would not be found there).
 */
export function regionForArn(arn: ParsedArn, flagRegion: string | undefined, label: string): string {
  if (flagRegion && flagRegion !== arn.region) {
    throw new CliError(`the ${label} is in region ${arn.region} but --region says ${flagRegion}: drop --region (the ARN's region is used) or pass --region ${arn.region}`, false, 'RegionMismatch');
  }
  return arn.region;
}

/** The region named by the flag or the environment, if any (else the SDK reads the profile's config). */
export function configuredRegion(flagRegion: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  return flagRegion || env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
}

export interface AwsClients {
  sfn: (region: string | undefined) => SFNClient;
  cloudFormation: (region: string | undefined) => CloudFormationClient;
  /** Reads stored results (`resultRef`s in an output or a failure's cause). */
  s3: (region: string | undefined) => S3Client;
}

export const defaultClients: AwsClients = {
  sfn: (region) => new SFNClient(region ? { region } : {}),
  cloudFormation: (region) => new CloudFormationClient(region ? { region } : {}),
  s3: (region) => new S3Client(region ? { region } : {}),
};

/** The output of the stack that names the state machine (lib/webrun-stack.ts). */
export const STATE_MACHINE_OUTPUT = 'StateMachineArn';

/** The state machine ARN from the deployed stack's outputs. */
/** Which of the stack's state machines a command targets: the workflow's, or the batch's. */
export interface StateMachineKind {
  /** How messages name it: "state machine", "batch state machine". */
  label: string;
  /** The environment variable that holds its ARN. */
  envVar: string;
  /** The stack output that holds its ARN. */
  output: string;
  /** What to do when the stack has no such output. */
  missingOutputHint: string;
}

export const WORKFLOW_STATE_MACHINE: StateMachineKind = {
  label: 'state machine',
  envVar: 'WEBRUN_STATE_MACHINE_ARN',
  output: STATE_MACHINE_OUTPUT,
  missingOutputHint: 'is it a webrun-sfn stack? Pass --state-machine-arn <arn>',
};

/** The ARN in the stack's output for `kind` (StateMachineArn unless told otherwise). */
export async function stateMachineFromStack(
  client: CloudFormationClient,
  stackName: string,
  region: string | undefined,
  kind: StateMachineKind = WORKFLOW_STATE_MACHINE,
): Promise<string> {
  const where = region ? ` in region ${region}` : '';
  let outputs;
  try {
    const answer = await client.send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = answer.Stacks?.[0]?.Outputs;
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'ValidationError' && /does not exist/i.test(e.message ?? '')) {
      throw new CliError(`stack ${stackName} was not found${where}: deploy it (npx cdk deploy), or pass --stack <name>, --region <region> or --state-machine-arn <arn>`, false, 'StackNotFound');
    }
    throw describeAwsError(err, { region, service: 'CloudFormation' });
  }
  const arn = outputs?.find((o) => o.OutputKey === kind.output)?.OutputValue;
  if (!arn) throw new CliError(`stack ${stackName}${where} has no ${kind.output} output: ${kind.missingOutputHint}`, false, 'StackNotFound');
  return arn;
}

export interface ErrorContext {
  /** The execution or state machine ARN the call was about. */
  arn?: string;
  region?: string;
  /** The execution name given to StartExecution. */
  executionName?: string;
  /** The service called, as messages name it. @default S3 for an s3:// `arn`, else Step Functions */
  service?: 'Step Functions' | 'CloudFormation' | 'S3';
}

/**
 * One clear sentence for an AWS SDK error (or the error itself when it is already a CliError). An error that is not
 * AWS's (a stored result that does not match its reference: Webrun.ConfigError) keeps its own message and name.
 */
export function describeAwsError(err: unknown, ctx: ErrorContext = {}): CliError {
  if (err instanceof CliError) return err;
  const e = (err ?? {}) as { name?: string; message?: string; code?: string; Code?: string; $metadata?: unknown };
  const name = e.name ?? 'Error';
  const message = e.message ?? String(err);
  const region = ctx.region ? ` in region ${ctx.region}` : '';
  const make = (text: string, errName = name) => new CliError(text, false, errName);
  switch (name) {
    case 'CredentialsProviderError':
    case 'TokenProviderError':
      return make('no AWS credentials were found: run `aws configure` or `aws sso login --profile <p>` and set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)', 'CredentialsProviderError');
    case 'UnrecognizedClientException':
    case 'InvalidClientTokenId':
    case 'InvalidSignatureException':
    case 'SignatureDoesNotMatch':
      return make(`AWS did not accept the credentials (${name}): check AWS_PROFILE or the access key, and that the account is the one the workflow is deployed in`);
    case 'ExpiredTokenException':
    case 'ExpiredToken':
      return make('the AWS credentials have expired: log in again (e.g. `aws sso login`) or refresh the session token');
    case 'AccessDeniedException':
    case 'AccessDenied':
      return make(`access denied${ctx.arn ? ` to ${ctx.arn}` : ''}: the caller's IAM policy must allow this action (see docs/OPERATIONS.md, "Permissions for the CLI"): ${message}`);
    case 'NoSuchKey':
      return make(`the stored result ${ctx.arn ?? ''} is gone: stored results expire after resultRetentionDays (default 30); --refs prints the references without reading them`);
    case 'NoSuchBucket':
      return make(`the result bucket of ${ctx.arn ?? 'this result'} does not exist (was the stack destroyed and its bucket deleted?); --refs prints the references without reading them`);
    case 'ExecutionDoesNotExist':
      return make(`${ctx.arn ? `execution ${ctx.arn}` : 'the execution'} does not exist${region}: check the ARN (histories are kept 90 days after an execution closes)`);
    case 'StateMachineDoesNotExist':
      return make(`${ctx.arn ? `state machine ${ctx.arn}` : 'the state machine'} does not exist${region}: check the ARN and the region, or whether the stack was destroyed`);
    case 'StateMachineDeleting':
      return make(`${ctx.arn ? `state machine ${ctx.arn}` : 'the state machine'} is being deleted: it cannot start executions`);
    case 'InvalidArn':
      return make(`${ctx.arn ? JSON.stringify(ctx.arn) : 'the ARN'} is not a valid Step Functions ARN: ${message}`);
    case 'ExecutionAlreadyExists':
      return make(`an execution named ${JSON.stringify(ctx.executionName ?? '')} already exists with another input or has already finished: execution names are unique per state machine for 90 days; pick another --name`);
    case 'InvalidName':
      return make(`the execution name ${JSON.stringify(ctx.executionName ?? '')} is not valid: ${message}`);
    case 'InvalidExecutionInput':
      return make(`Step Functions refused the input: ${message}`);
    case 'ExecutionLimitExceeded':
      return make('the account has reached its limit of open executions: wait for some to finish or stop them');
    case 'ThrottlingException':
    case 'TooManyRequestsException':
      return make('AWS throttled the request: try again in a moment');
  }
  if (/region is missing/i.test(message)) return make('no AWS region is set: pass --region <region> or set AWS_REGION (or a region in the profile)', 'RegionMissing');
  const code = e.code ?? e.Code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || /getaddrinfo/i.test(message)) {
    const service = ctx.service ?? (ctx.arn?.startsWith('s3://') ? 'S3' : 'Step Functions');
    return make(`cannot reach the ${service} endpoint${region}: check the region name and the network (${message})`, 'NetworkError');
  }
  // Only what an AWS service answered (the SDK's exceptions carry $metadata) is called an AWS error.
  if (e.$metadata === undefined) return make(isWebrunError(err) ? message : `${name}: ${message}`);
  return make(`AWS error ${name}: ${message}`);
}
