from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Question


def index(request):
    questions = Question.objects.order_by("pub_date")
    return render(request, "polls/index.html", {"questions": questions})


@csrf_exempt
@require_POST
def ask(request):
    question = Question.objects.create(question_text=request.POST["question_text"])
    return HttpResponse(f"asked {question.pk}\n", status=201)
