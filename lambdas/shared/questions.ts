/**
 * Telling a person a guardrail question waits for them: an EventBridge event on the default bus (`source:
 * "webrun-sfn"`, `detail-type: "Guardrail question"`) that any rule can route (chat, paging, a ticket), and, when a
 * topic is configured, an SNS message (e-mail). Both carry the question, the deadline, the commands that answer it
 * and the session's live view; never the task token (`webrun-sfn answer` finds it in the execution history).
 */
import { PutEventsCommand, type EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { QUESTION_EVENT } from './contract';
import { ApiError } from './errors';
import type { QuestionNotice, QuestionNotifier } from './handlers';

/** What the event and the message say: everything but the token. */
export function questionDetail(notice: QuestionNotice) {
  const { token: _token, ...rest } = notice;
  return {
    ...rest,
    answer: `npx webrun-sfn answer ${notice.executionArn} "<your answer>"`,
    stop: `npx webrun-sfn answer ${notice.executionArn} --stop`,
  };
}

export function awsQuestionNotifier(events: Pick<EventBridgeClient, 'send'>, sns: Pick<SNSClient, 'send'> | undefined, topicArn: string | undefined): QuestionNotifier {
  return {
    async notify(notice) {
      const detail = questionDetail(notice);
      const put = await events.send(new PutEventsCommand({ Entries: [{ Source: QUESTION_EVENT.source, DetailType: QUESTION_EVENT.detailType, Detail: JSON.stringify(detail) }] }));
      if ((put.FailedEntryCount ?? 0) > 0) throw new ApiError(`The question event was refused by EventBridge (${put.Entries?.[0]?.ErrorCode ?? 'unknown'}).`);
      if (sns && topicArn) {
        const lines = [
          `Task ${notice.taskIndex + 1} of ${notice.executionArn} asks:`,
          '',
          `  ${notice.question}`,
          '',
          `Answer before ${notice.deadline}:`,
          `  ${detail.answer}`,
          `or stop the run:`,
          `  ${detail.stop}`,
          ...(notice.liveViewUrl ? ['', `Watch the browser live: ${notice.liveViewUrl}`] : []),
        ];
        await sns.send(new PublishCommand({ TopicArn: topicArn, Subject: 'webrun-sfn: a guardrail question waits for you', Message: lines.join('\n') }));
      }
    },
  };
}
