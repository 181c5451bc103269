{{- /*
Helpers of the braintrust_ops CronJobs. Every name starts "sefaria." to sit in the chart's namespace
(helm-chart/sefaria/templates/_helpers.tpl names its helpers sefaria.*), then "braintrust" or
"secrets.braintrust", which the chart does not use: Helm keeps the last template defined under a name
without a word, so a clash would silently replace one of the chart's helpers.
*/ -}}

{{- /*
The Braintrust Secret's name: secrets.braintrust.ref, or braintrust-secret-<deployEnv> when the ref is
empty, blank or absent, the way the chart's sefaria.secrets.* helpers fall back to <name>-<deployEnv>
(helm-chart/sefaria/templates/_helpers.tpl, e.g. sefaria.secrets.geminiApiKey). Its keys are the
variables they fill: BRAINTRUST_API_KEY and BRAINTRUST_PROJECT_ID.
*/ -}}
{{- define "sefaria.secrets.braintrust" -}}
{{- $braintrust := get (.Values.secrets | default dict) "braintrust" | default dict -}}
{{- $ref := get $braintrust "ref" | default "" | toString | trim -}}
{{- if $ref -}}
{{- $ref -}}
{{- else -}}
braintrust-secret-{{ .Values.deployEnv }}
{{- end -}}
{{- end -}}

{{- /*
cronJobs.braintrust.tagAndPush.shards, checked: a whole number, 1 or more (1 when unset). Use it as
`include "sefaria.braintrust.shards" . | int`.
*/ -}}
{{- define "sefaria.braintrust.shards" -}}
{{- $shards := .Values.cronJobs.braintrust.tagAndPush.shards -}}
{{- $text := kindIs "invalid" $shards | ternary "1" (toString $shards) -}}
{{- if not (regexMatch "^[1-9][0-9]*$" $text) -}}
{{- fail (printf "cronJobs.braintrust.tagAndPush.shards must be a whole number, 1 or more (it is %s)" $text) -}}
{{- end -}}
{{- $text -}}
{{- end -}}

{{- /*
tag_logs' options for batch mode (cronJobs.braintrust.tagAndPush.batch and batchWaitMinutes), as items
to end a JSON list of the command's words: nothing, or , "--batch"[, "--wait", "<minutes>"].
*/ -}}
{{- define "sefaria.braintrust.batchArgs" -}}
{{- $job := .Values.cronJobs.braintrust.tagAndPush -}}
{{- if $job.batch -}}
, "--batch"{{ with $job.batchWaitMinutes }}, "--wait", {{ toString . | quote }}{{ end }}
{{- end -}}
{{- end -}}

{{- /*
What every braintrust_ops pod shares: no restarts in place (the Job retries a failed pod, and a rerun
does only what is left), a grace period that fits the commands' own, and Sefaria's local_settings.py
as its other CronJobs mount it (helm-chart/sefaria/templates/cronjob/trends.yaml). Argument: the
chart's context. A pod with more volumes lists them right after this.
*/ -}}
{{- define "sefaria.braintrust.podSettings" -}}
restartPolicy: Never
# SIGTERM first, SIGKILL this long after: the commands give the calls in flight
# BRAINTRUST_OPS_SHUTDOWN_GRACE_SECONDS (20 s) and record the run as interrupted.
terminationGracePeriodSeconds: 30
volumes:
- name: local-settings
  configMap:
    name: local-settings-file-{{ .Values.deployEnv }}
    items:
      - key: local_settings.py
        path: local_settings.py
{{- end -}}

{{- /*
What every braintrust_ops container shares: the web image, the environment Sefaria's settings need
(the same envFrom and local_settings.py mount as Sefaria's other CronJobs), the keys its command
needs, and the CronJob's schedule for the command's Sentry Cron monitor.
Arguments: root (the chart's context), schedule; braintrust and anthropic: whether the command
calls that service, so a container holds only the keys its command needs; backupDir (optional:
where backup_logs writes, a mounted emptyDir named "backup").

Both Secrets are optional: without one the command starts and stops at once, naming the variable it
lacks (exit 1), where a required one would hold the pod in CreateContainerConfigError until the
Job's deadline.
*/ -}}
{{- define "sefaria.braintrust.container" -}}
{{- $root := .root -}}
image: "{{ $root.Values.web.containerImage.imageRegistry }}:{{ $root.Values.web.containerImage.tag }}"
workingDir: /app
env:
- name: REDIS_HOST
  value: "redis-{{ $root.Values.deployEnv }}"
- name: NODEJS_HOST
  value: "node-{{ $root.Values.deployEnv }}-{{ $root.Release.Revision }}"
- name: VARNISH_HOST
  value: "varnish-{{ $root.Values.deployEnv }}-{{ $root.Release.Revision }}"
{{- if .braintrust }}
# The Braintrust Secret's two keys, named for the variables they fill.
- name: BRAINTRUST_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "sefaria.secrets.braintrust" $root }}
      key: BRAINTRUST_API_KEY
      optional: true
- name: BRAINTRUST_PROJECT_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "sefaria.secrets.braintrust" $root }}
      key: BRAINTRUST_PROJECT_ID
      optional: true
{{- end }}
- name: BRAINTRUST_OPS_CRON_SCHEDULE
  value: {{ .schedule | quote }}
{{- if .writeBack }}
# tag_logs adds each label to its source log's tags in Braintrust (cronJobs.braintrust.tagAndPush.writeBack).
- name: BRAINTRUST_OPS_WRITE_BACK
  value: "true"
{{- end }}
{{- with .backupDir }}
- name: BRAINTRUST_OPS_BACKUP_DIR
  value: {{ . | quote }}
{{- end }}
envFrom:
{{- if .anthropic }}
# Anthropic's key as the tasks pods read it (templates/rollout/task.yaml): the Secret named by
# tasks.anthropicSecretRef (values.yaml default anthropic-api-key), loaded whole and optional, holding
# ANTHROPIC_API_KEY. Before the local settings, in the order task.yaml loads them.
- secretRef:
    name: {{ required "tasks.anthropicSecretRef is required: the Secret holding ANTHROPIC_API_KEY, as the tasks pods read it" (get ($root.Values.tasks | default dict) "anthropicSecretRef") }}
    optional: true
{{- end }}
- secretRef:
    name: {{ $root.Values.secrets.localSettings.ref }}
    optional: true
- secretRef:
    name: local-settings-secrets-{{ $root.Values.deployEnv }}
    optional: true
- configMapRef:
    name: local-settings-{{ $root.Values.deployEnv }}
volumeMounts:
- mountPath: /app/sefaria/local_settings.py
  name: local-settings
  subPath: local_settings.py
  readOnly: true
{{- with .backupDir }}
- mountPath: {{ . }}
  name: backup
{{- end }}
{{- end -}}

{{- /*
The container that deletes tagged logs' chat text past its retention, once a night's tagging and
pushing are done (its run takes the tag_logs and push_to_datasets locks). It needs no key.
Arguments: root, schedule.
*/ -}}
{{- define "sefaria.braintrust.pruneContainer" -}}
- name: braintrust-prune
  {{- include "sefaria.braintrust.container" (dict "root" .root "schedule" .schedule) | nindent 2 }}
  command: ["python", "manage.py", "prune_braintrust_ops"]
  resources:
    requests:
      memory: "256Mi"
      cpu: "100m"
    limits:
      memory: "512Mi"
      cpu: "500m"
{{- end -}}
