// app.js: a CDK app, in plain JavaScript, that deploys the webrun-sfn workflow (cdk.json: { "app": "node app.js" }).
const { App, CfnOutput, Stack } = require('aws-cdk-lib');
const { WebrunWorkflow } = require('webrun-sfn');

const app = new App();
const stack = new Stack(app, 'MyWebrunWorkflows');

// The state machine, its Lambdas, the secret for the webrun API key, the session cleanup, and alarms to an SNS
// topic (add { observability: { alarmEmail: 'ops@example.com' } } to have them mailed).
const workflow = new WebrunWorkflow(stack, 'Workflow');

// Other services that start runs go here: see "Start runs from other services" below.

new CfnOutput(stack, 'StateMachineArn', { value: workflow.stateMachine.stateMachineArn });
new CfnOutput(stack, 'ApiKeySecretArn', { value: workflow.apiKeySecret.secretArn });
new CfnOutput(stack, 'AlarmTopicArn', { value: workflow.observability.alarmTopic.topicArn });

app.synth();
