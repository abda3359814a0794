import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { WebrunWorkflow, type WebrunWorkflowProps } from './webrun-workflow';

export interface WebrunStackProps extends StackProps {
  readonly workflow?: WebrunWorkflowProps;
}

/** The deployable unit: composes the workflow construct and publishes what operators need. */
export class WebrunStack extends Stack {
  public readonly workflow: WebrunWorkflow;

  constructor(scope: Construct, id: string, props: WebrunStackProps = {}) {
    super(scope, id, props);
    this.workflow = new WebrunWorkflow(this, 'Workflow', props.workflow);
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn, description: 'Start executions of this state machine' });
    new CfnOutput(this, 'ApiKeySecretArn', { value: this.workflow.apiKeySecret.secretArn, description: 'Put the webrun API key into this secret' });
    if (this.workflow.cleanup) {
      new CfnOutput(this, 'SessionCleanupDeadLetterQueueUrl', {
        value: this.workflow.cleanup.deadLetterQueue.queueUrl,
        description: 'Executions whose webrun session cleanup gave up (the session may still be open)',
      });
    }
  }
}
